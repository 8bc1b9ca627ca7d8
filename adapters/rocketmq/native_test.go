//go:build !race

package rocketmq_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// The adapter's levels, the embedded broker's defaults and pkg/policy's
// RocketMQ schedule are one table: each is compared with the others, never
// with a literal repeated here.
func TestDelayLevels_are_the_embedded_brokers_defaults_and_policy_RocketMQ_is_their_consumer_part(t *testing.T) {
	levels := rocketmq.DelayLevels()
	if diff := cmp.Diff(rocketmqtest.DefaultDelayLevels(), levels); diff != "" {
		t.Fatalf("embedded broker levels (-want +got):\n%s", diff)
	}
	if len(levels) != 18 {
		t.Fatalf("%d levels, want the broker's 18", len(levels))
	}
	p := policy.RocketMQ()
	if got := p.Retries(); got != policy.RocketMQRetries || got != len(levels)-2 {
		t.Fatalf("policy.RocketMQ() allows %d retries, RocketMQRetries is %d, levels 3..18 are %d", got, policy.RocketMQRetries, len(levels)-2)
	}
	if diff := cmp.Diff(levels[2:], p.Schedule(policy.RocketMQRetries)); diff != "" {
		t.Fatalf("policy.RocketMQ() schedule vs levels 3..18 (-levels +policy):\n%s", diff)
	}
	for n, d := range p.Schedule(policy.RocketMQRetries) {
		if got := rocketmq.DelayLevelFor(d); got != n+3 {
			t.Errorf("retry %d (%v): level %d, want %d, the broker's own choice", n+1, d, got, n+3)
		}
	}
	levels[0] = 0
	if rocketmq.DelayLevels()[0] == 0 {
		t.Fatal("DelayLevels shares its table with the caller")
	}
}

func TestDelayLevelFor_maps_a_delay_onto_the_smallest_level_that_waits_long_enough(t *testing.T) {
	levels := rocketmq.DelayLevels()
	for i, l := range levels {
		if got := rocketmq.DelayLevelFor(l); got != i+1 {
			t.Errorf("DelayLevelFor(%v) = %d, want %d", l, got, i+1)
		}
		if i > 0 {
			if got := rocketmq.DelayLevelFor(levels[i-1] + 1); got != i+1 {
				t.Errorf("DelayLevelFor(%v + 1ns) = %d, want %d", levels[i-1], got, i+1)
			}
		}
	}
	for _, d := range []time.Duration{-time.Second, 0} {
		if got := rocketmq.DelayLevelFor(d); got != 1 {
			t.Errorf("DelayLevelFor(%v) = %d, want 1", d, got)
		}
	}
	if got := rocketmq.DelayLevelFor(levels[len(levels)-1] * 3); got != len(levels) {
		t.Errorf("DelayLevelFor(beyond the last level) = %d, want %d", got, len(levels))
	}
}

func ExampleDelayLevelFor() {
	for n, d := range policy.RocketMQ().Schedule(4) {
		fmt.Printf("retry %d waits %v: delay level %d\n", n+1, d, rocketmq.DelayLevelFor(d))
	}
	// Output:
	// retry 1 waits 10s: delay level 3
	// retry 2 waits 30s: delay level 4
	// retry 3 waits 1m0s: delay level 5
	// retry 4 waits 2m0s: delay level 6
}

// scheduledHook records the redelivery.RedeliveryScheduledHook events.
type scheduledHook struct{ got []redelivery.ScheduledParams }

func (h *scheduledHook) OnRedeliveryScheduled(p redelivery.ScheduledParams) { h.got = append(h.got, p) }

func TestNativeScheduler_marks_the_delivery_with_the_level_and_the_exact_delay_and_the_middleware_nacks_it(t *testing.T) {
	dlq := &fakepub.Publisher{}
	hook := &scheduledHook{}
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "g", Handler: "h", Scheduler: rocketmq.NewNativeScheduler(rocketmq.NativeConfig{}),
		DeadLetterPublisher: dlq, Hooks: []any{hook},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	levels := rocketmq.DelayLevels()
	schedule := policy.RocketMQ().Schedule(policy.RocketMQRetries)
	errDown := errors.New("down")
	verdict := errDown
	h := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, verdict })
	for reconsume := 0; reconsume < policy.RocketMQRetries; reconsume++ {
		msg := message.NewMessage("m", nil)
		msg.Metadata.Set(metadata.ReconsumeTimes, strconv.Itoa(reconsume))
		if _, err := h(msg); !errors.Is(err, errDown) {
			t.Fatalf("reconsume %d: err = %v, want the handler error so the subscriber nacks", reconsume, err)
		}
		md := msg.Metadata
		if got, want := md.Get(metadata.DelayLevel), strconv.Itoa(reconsume+3); got != want {
			t.Fatalf("reconsume %d: delay level %s, want %s (retry n -> level n+2)", reconsume, got, want)
		}
		if got, want := md.Get(metadata.RetryDelayMillis), strconv.FormatInt(schedule[reconsume].Milliseconds(), 10); got != want {
			t.Fatalf("reconsume %d: retry delay %s ms, want %s", reconsume, got, want)
		}
		if got := md.Get(metadata.MaxReconsumeTimes); got != "16" {
			t.Fatalf("reconsume %d: max reconsume times %q, want the policy's 16", reconsume, got)
		}
	}
	// A delay between levels: the level waits longer, and that is reported.
	verdict = redelivery.RetryAfter(1500 * time.Millisecond)
	msg := message.NewMessage("m2", nil)
	if _, err := h(msg); err == nil {
		t.Fatal("acked a retry-after verdict, want a nack")
	}
	if msg.Metadata.Get(metadata.DelayLevel) != "2" || msg.Metadata.Get(metadata.RetryDelayMillis) != "1500" {
		t.Fatalf("retry after 1.5s marked %v", msg.Metadata)
	}
	if len(hook.got) != policy.RocketMQRetries+1 {
		t.Fatalf("%d scheduled events", len(hook.got))
	}
	for i, p := range hook.got[:policy.RocketMQRetries] {
		if p.Delay != levels[i+2] || p.Route != redelivery.BySubscriber {
			t.Fatalf("event %d: %+v, want the level's %v", i, p, levels[i+2])
		}
	}
	if last := hook.got[policy.RocketMQRetries]; last.Delay != levels[1] {
		t.Fatalf("retry after 1.5s reported %v, want level 2's %v", last.Delay, levels[1])
	}
	verdict = errDown
	msg = message.NewMessage("m", nil)
	msg.Metadata.Set(metadata.ReconsumeTimes, "16")
	if _, err := h(msg); err != nil {
		t.Fatalf("17th failure: err = %v, want nil (acked after dead-lettering)", err)
	}
	got := dlq.Accepted()
	if len(got) != 1 || got[0].Topic != redelivery.DefaultDeadLetterTopic("g") ||
		got[0].Msg.Metadata.Get(metadata.Attempts) != "17" || got[0].Msg.Metadata.Get(metadata.DelayLevel) != "" {
		t.Fatalf("dead-letter publish: %v", got)
	}
}

func TestNativeScheduler_takes_the_brokers_own_levels_and_refuses_bad_ones(t *testing.T) {
	custom := []time.Duration{time.Second, 10 * time.Second, time.Minute}
	r, err := redelivery.New(redelivery.Config{ConsumerGroup: "g", Handler: "h", DeadLetterPublisher: fakepub.Nop,
		Policy:    policy.Policy{MaxAttempts: 5, Backoff: policy.Fixed(20 * time.Second)},
		Scheduler: rocketmq.NewNativeScheduler(rocketmq.NativeConfig{DelayLevels: custom})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	msg := message.NewMessage("m", nil)
	if _, err := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("x") })(msg); err == nil {
		t.Fatal("acked, want a nack")
	}
	if got := msg.Metadata.Get(metadata.DelayLevel); got != "3" {
		t.Fatalf("20s on levels %v: level %s, want 3", custom, got)
	}
	for _, tc := range []struct {
		name   string
		levels []time.Duration
		want   string
	}{
		{"too many", make([]time.Duration, 19), "Scheduler: DelayLevels"},
		{"not ascending", []time.Duration{time.Minute, time.Second}, "Scheduler: DelayLevels[1]"},
		{"zero", []time.Duration{0}, "Scheduler: DelayLevels[0]"},
	} {
		_, err := redelivery.New(redelivery.Config{ConsumerGroup: "g", Handler: "h", DeadLetterPublisher: fakepub.Nop,
			Scheduler: rocketmq.NewNativeScheduler(rocketmq.NativeConfig{DelayLevels: tc.levels})}, nil)
		if !errors.Is(err, redelivery.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig naming %s", tc.name, err, tc.want)
		}
	}
	sched := rocketmq.NewNativeScheduler(rocketmq.NativeConfig{})
	cfg := redelivery.Config{ConsumerGroup: "g", Handler: "h", DeadLetterPublisher: fakepub.Nop, Scheduler: sched}
	first, err := redelivery.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := redelivery.New(cfg, nil); !errors.Is(err, redelivery.ErrInvalidConfig) {
		t.Fatalf("a scheduler shared by two Redeliveries: err = %v, want ErrInvalidConfig", err)
	}
}
