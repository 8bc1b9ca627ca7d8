package redelivery_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
)

func deadLettered(id, topic string) *message.Message {
	m := message.NewMessage(id, []byte("p"))
	md := map[string]string{
		metadata.OriginalTopic: topic, metadata.DeadLetterReason: redelivery.ReasonMaxAttempts,
		metadata.Attempts: "17", metadata.ReconsumeTimes: "16", redelivery.RedeliveryCount: "16",
		metadata.FirstFailureTime: "2024-01-01T00:00:00Z", metadata.LastError: "down", metadata.PanicStack: "stack",
		metadata.OriginalUUID: id, "tenant": "acme",
		metadata.RetryTopic: "retry_" + topic, metadata.ConsumerGroup: "billing", metadata.Handler: "charge",
	}
	for k, v := range md {
		m.Metadata.Set(k, v)
	}
	return m
}

// ackState reports whether msg was acked, nacked, or neither.
func ackState(msg *message.Message) string {
	select {
	case <-msg.Acked():
		return "acked"
	case <-msg.Nacked():
		return "nacked"
	default:
		return "pending"
	}
}

func TestReplay_publishes_to_the_original_topic_and_resets_or_keeps_the_count(t *testing.T) {
	for _, keep := range []bool{false, true} {
		pub := &fakepub.Publisher{}
		src := make(chan *message.Message, 2)
		a, b := deadLettered("a", "orders"), deadLettered("b", "payments")
		src <- a
		src <- b
		var results []redelivery.ReplayResult
		stats, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{
			Messages: src, Publisher: pub, KeepReconsumeTimes: keep, Limit: 2,
			Hooks: []any{replayed(func(r redelivery.ReplayResult) { results = append(results, r) })},
		}, nil)
		if err != nil || stats.Replayed != 2 {
			t.Fatalf("keep=%v: %+v %v", keep, stats, err)
		}
		if diff := cmp.Diff([]string{"retry_orders", "retry_payments"}, pub.Topics()); diff != "" {
			t.Fatalf("topics (-want +got):\n%s", diff)
		}
		if results[0].Topic != "retry_orders" || results[0].OriginalTopic != "orders" {
			t.Fatalf("result topics %+v", results[0])
		}
		if results[0].MessageUUID != "a" || results[0].Reason != redelivery.ReasonMaxAttempts || results[0].Err != nil {
			t.Fatalf("result %+v", results[0])
		}
		out := pub.Accepted()[0].Msg
		if out.UUID != "a" || out.Metadata.Get("tenant") != "acme" || out.Metadata.Get(metadata.OriginalUUID) != "a" {
			t.Fatalf("replayed message %s %v", out.UUID, out.Metadata)
		}
		for _, k := range []string{metadata.DeadLetterReason, metadata.Attempts, metadata.PanicStack} {
			if out.Metadata.Get(k) != "" {
				t.Fatalf("keep=%v: %s still set", keep, k)
			}
		}
		wantCount := ""
		if keep {
			wantCount = "16"
		}
		if out.Metadata.Get(redelivery.RedeliveryCount) != wantCount || out.Metadata.Get(metadata.ReconsumeTimes) != wantCount {
			t.Fatalf("keep=%v: count %q/%q, want %q", keep, out.Metadata.Get(redelivery.RedeliveryCount), out.Metadata.Get(metadata.ReconsumeTimes), wantCount)
		}
		if ackState(a) != "acked" || ackState(b) != "acked" {
			t.Fatalf("source messages %s %s, want acked", ackState(a), ackState(b))
		}
	}
}

func TestReplay_sends_to_the_retry_topic_by_default_to_the_original_topic_on_request_or_to_a_given_topic(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  redelivery.ReplayConfig
		want string
	}{
		{"default", redelivery.ReplayConfig{}, "retry_orders"},
		{"original", redelivery.ReplayConfig{ToOriginalTopic: true}, "orders"},
		{"given", redelivery.ReplayConfig{RetryTopic: "%RETRY%billing_orders"}, "%RETRY%billing_orders"},
	} {
		pub := &fakepub.Publisher{}
		src := make(chan *message.Message, 1)
		src <- deadLettered("a", "orders")
		cfg := tc.cfg
		cfg.Messages, cfg.Publisher, cfg.Limit = src, pub, 1
		if _, err := redelivery.Replay(context.Background(), cfg, nil); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff([]string{tc.want}, pub.Topics()); diff != "" {
			t.Fatalf("%s: topics (-want +got):\n%s", tc.name, diff)
		}
	}
	_, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{
		Messages: make(chan *message.Message), Publisher: &fakepub.Publisher{}, ToOriginalTopic: true, RetryTopic: "x",
	}, nil)
	if !errors.Is(err, redelivery.ErrInvalidConfig) {
		t.Fatalf("RetryTopic with ToOriginalTopic: err = %v", err)
	}
}

func TestReplay_refuses_a_dead_letter_without_retry_topic_and_leaves_it_in_the_DLQ(t *testing.T) {
	pub := &fakepub.Publisher{}
	src := make(chan *message.Message, 1)
	m := deadLettered("native", "orders")
	delete(m.Metadata, metadata.RetryTopic)
	src <- m
	stats, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{Messages: src, Publisher: pub}, nil)
	if !errors.Is(err, redelivery.ErrMissingRetryTopic) || stats.Replayed != 0 || len(pub.Accepted()) != 0 || ackState(m) != "nacked" {
		t.Fatalf("stats %+v err %v published %d message %s", stats, err, len(pub.Accepted()), ackState(m))
	}
}

func TestReplay_strips_the_dead_letter_and_poison_facts_and_keeps_the_identity(t *testing.T) {
	m := deadLettered("a", "orders")
	for k, v := range map[string]string{
		metadata.FallbackAttempts: "3", metadata.FallbackFirstError: "broker down", metadata.FallbackLastError: "still down",
		metadata.DelayLevel: "3", metadata.Broadcast: "false", metadata.RocketMQMsgID: "X", metadata.RocketMQOffsetMsgID: "Y",
		metadata.RocketMQTopic: "%DLQ%billing", metadata.RocketMQQueueID: "0", metadata.RocketMQQueueOffset: "7",
		metadata.RocketMQBornTimestamp: "1", metadata.RocketMQStoreTimestamp: "2",
	} {
		m.Metadata.Set(k, v)
	}
	pub := &fakepub.Publisher{}
	src := make(chan *message.Message, 1)
	src <- m
	if _, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{Messages: src, Publisher: pub, Limit: 1}, nil); err != nil {
		t.Fatal(err)
	}
	out := pub.Accepted()[0].Msg
	want := message.Metadata{metadata.OriginalTopic: "orders", metadata.OriginalUUID: "a", "tenant": "acme"}
	if diff := cmp.Diff(want, out.Metadata); diff != "" || out.UUID != "a" || string(out.Payload) != "p" {
		t.Fatalf("replayed %s %q, metadata (-want +got):\n%s", out.UUID, out.Payload, diff)
	}
}

func TestReplay_stops_at_a_message_without_original_topic_and_leaves_it_in_the_DLQ(t *testing.T) {
	pub := &fakepub.Publisher{}
	src := make(chan *message.Message, 2)
	orphan := message.NewMessage("orphan", nil)
	src <- orphan
	src <- deadLettered("b", "orders")
	var results []redelivery.ReplayResult
	stats, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{
		Messages: src, Publisher: pub, Hooks: []any{replayed(func(r redelivery.ReplayResult) { results = append(results, r) })},
	}, nil)
	if !errors.Is(err, redelivery.ErrMissingOriginalTopic) || stats.Replayed != 0 || len(pub.Accepted()) != 0 {
		t.Fatalf("stats %+v err %v published %d", stats, err, len(pub.Accepted()))
	}
	if len(results) != 1 || !errors.Is(results[0].Err, redelivery.ErrMissingOriginalTopic) || ackState(orphan) != "nacked" {
		t.Fatalf("results %+v, orphan %s", results, ackState(orphan))
	}
}

func TestReplay_a_publish_failure_nacks_and_stops(t *testing.T) {
	errDown := errors.New("down")
	src := make(chan *message.Message, 1)
	m := deadLettered("a", "orders")
	src <- m
	_, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{Messages: src, Publisher: &fakepub.Publisher{Err: errDown}}, nil)
	if !errors.Is(err, errDown) || ackState(m) != "nacked" {
		t.Fatalf("err %v, message %s", err, ackState(m))
	}
}

func TestReplay_is_rate_limited_on_the_clock_and_stops_when_idle(t *testing.T) {
	fake := clocktest.NewFake(time.Time{})
	start := fake.Now()
	var (
		mu sync.Mutex
		at []time.Duration
	)
	pubs := make(chan struct{}, 10)
	pub := &fakepub.Publisher{Func: func(string, []*message.Message) error {
		mu.Lock()
		at = append(at, fake.Now().Sub(start))
		mu.Unlock()
		pubs <- struct{}{}
		return nil
	}}
	src := make(chan *message.Message, 3)
	for _, id := range []string{"a", "b", "c"} {
		src <- deadLettered(id, "orders")
	}
	type outcome struct {
		stats redelivery.ReplayStats
		err   error
	}
	done := make(chan outcome, 1)
	go func() {
		s, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{
			Messages: src, Publisher: pub, Rate: 2, IdleTimeout: time.Minute, Clock: fake,
		}, nil)
		done <- outcome{s, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recv(t, pubs, "first publish")
	for i := 0; i < 2; i++ {
		// Replay waits 500 ms (rate 2/s) before the next message. The idle
		// timers of its receives (1 min) are pending too, so counting timers
		// cannot tell that the wait started: look for its deadline.
		if err := fake.BlockUntilDue(ctx, fake.Now().Add(500*time.Millisecond)); err != nil {
			t.Fatalf("Replay never waited for the rate limit: %v", err)
		}
		select {
		case <-pubs:
			t.Fatal("published before the rate limit allowed")
		default:
		}
		fake.Advance(500 * time.Millisecond)
		recv(t, pubs, "rate-limited publish")
	}
	// Source drained: Replay returns once the idle timeout fired.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				fake.AdvanceToNext()
			}
		}
	}()
	o := recv(t, done, "Replay to return when idle")
	if o.err != nil || o.stats.Replayed != 3 {
		t.Fatalf("%+v %v", o.stats, o.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]time.Duration{0, 500 * time.Millisecond, time.Second}, at); diff != "" {
		t.Fatalf("publish times (-want +got):\n%s", diff)
	}
}

func TestReplay_rejects_a_config_without_source_or_publisher(t *testing.T) {
	_, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{}, nil)
	if !errors.Is(err, redelivery.ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
}

// replayed is a ReplayedHook.
type replayed func(redelivery.ReplayResult)

func (f replayed) OnReplayed(r redelivery.ReplayResult) { f(r) }

func TestReplay_rejects_hooks_that_implement_no_hook_and_calls_each_ReplayedHook(t *testing.T) {
	_, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{
		Messages: make(chan *message.Message), Publisher: &fakepub.Publisher{},
		Hooks: []any{replayed(func(redelivery.ReplayResult) {}), func(redelivery.ReplayResult) {}},
	}, nil)
	if !errors.Is(err, redelivery.ErrInvalidConfig) || !strings.Contains(err.Error(), "Hooks[1]") {
		t.Fatalf("err = %v, want ErrInvalidConfig naming Hooks[1] (a plain func is no hook)", err)
	}
	src := make(chan *message.Message, 1)
	src <- deadLettered("a", "orders")
	var first, second []string
	if _, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{
		Messages: src, Publisher: &fakepub.Publisher{}, Limit: 1,
		Hooks: []any{
			replayed(func(r redelivery.ReplayResult) { first = append(first, r.MessageUUID) }),
			replayed(func(r redelivery.ReplayResult) { second = append(second, r.Topic) }),
		},
	}, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a"}, first); diff != "" {
		t.Fatalf("first hook (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"retry_orders"}, second); diff != "" {
		t.Fatalf("second hook (-want +got):\n%s", diff)
	}
}
