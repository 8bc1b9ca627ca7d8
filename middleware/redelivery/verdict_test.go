package redelivery_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

func TestRedelivery_verdicts_decide_what_happens_to_a_failed_message(t *testing.T) {
	errDown := errors.New("down")
	cases := []struct {
		name      string
		cfg       redelivery.Config
		md        map[string]string
		fail      func() error // the first delivery's outcome
		wantDelay time.Duration
		wantDLQ   string // reason, "" when not dead-lettered
		wantDrop  string // reason, "" when not dropped
	}{
		{name: "plain error retries on the policy schedule", fail: func() error { return errDown }, wantDelay: 10 * time.Second},
		{name: "RetryLater retries on the policy schedule", fail: redelivery.RetryLater, wantDelay: 10 * time.Second},
		{name: "RetryAfter overrides the delay", fail: func() error { return fmt.Errorf("busy: %w", redelivery.RetryAfter(42*time.Second)) }, wantDelay: 42 * time.Second},
		{name: "RetryLater retries even when the classifier stops the error",
			cfg:  redelivery.Config{Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Minute), Classifier: func(error) policy.Class { return policy.Stop }}},
			fail: redelivery.RetryLater, wantDelay: time.Minute},
		{name: "a context error of the handler's own deadline is retried", fail: func() error { return context.DeadlineExceeded }, wantDelay: 10 * time.Second},
		{name: "DeadLetter goes to the DLQ at once", fail: func() error { return redelivery.DeadLetter("bad order") }, wantDLQ: redelivery.ReasonVerdict},
		{name: "a permanent error goes to the DLQ without retry", fail: func() error { return policy.Permanent(errDown) }, wantDLQ: redelivery.ReasonPermanent},
		{name: "a classifier Stop goes to the DLQ without retry",
			cfg:  redelivery.Config{Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Minute), Classifier: func(error) policy.Class { return policy.Stop }}},
			fail: func() error { return errDown }, wantDLQ: redelivery.ReasonPermanent},
		{name: "a permanent error is dropped with DropPermanent", cfg: redelivery.Config{DropPermanent: true},
			fail: func() error { return policy.Permanent(errDown) }, wantDrop: redelivery.ReasonPermanent},
		{name: "a panic is retried", fail: func() error { panic("boom") }, wantDelay: 10 * time.Second},
		{name: "a panic stopped by the classifier is dead-lettered with its stack",
			cfg: redelivery.Config{Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Minute), Classifier: func(err error) policy.Class {
				var pe *redelivery.PanicError
				if errors.As(err, &pe) {
					return policy.Stop
				}
				return policy.Default
			}}},
			fail: func() error { panic("boom") }, wantDLQ: redelivery.ReasonPanic},
		{name: "a broadcast message is never retried", md: map[string]string{metadata.Broadcast: "true"},
			fail: func() error { return errDown }, wantDrop: redelivery.ReasonBroadcast},
		{name: "a broadcast subscription never retries", cfg: redelivery.Config{Broadcast: true},
			fail: func() error { return errDown }, wantDrop: redelivery.ReasonBroadcast},
		{name: "a broadcast subscription ignores DeadLetter", cfg: redelivery.Config{Broadcast: true},
			fail: func() error { return redelivery.DeadLetter("x") }, wantDrop: redelivery.ReasonBroadcast},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := clocktest.NewFake(time.Time{})
			hooks := newHookRecorder()
			rec := newRecorder()
			cfg := c.cfg
			cfg.ConsumerGroup, cfg.Handler, cfg.Clock, cfg.Hooks = "g", "h", fake, []any{hooks}
			rg := newRig(t, cfg, "in", func(msg *message.Message) error {
				rec.record(msg, fake.Now())
				if msg.Metadata.Get(metadata.ReconsumeTimes) == "0" {
					return c.fail()
				}
				return nil
			})
			msg := message.NewMessage("m1", []byte("p"))
			for k, v := range c.md {
				msg.Metadata.Set(k, v)
			}
			if err := rg.ps.Publish("in", msg); err != nil {
				t.Fatal(err)
			}
			recv(t, rec.ch, "first delivery")
			switch {
			case c.wantDLQ != "":
				dl := recv(t, rg.dlq, "dead-letter message")
				dl.Ack()
				if got := dl.Metadata.Get(metadata.DeadLetterReason); got != c.wantDLQ {
					t.Fatalf("reason %q, want %q", got, c.wantDLQ)
				}
				if dl.Metadata.Get(metadata.Attempts) != "1" || dl.UUID != "m1" {
					t.Fatalf("DLQ message %s attempts %s", dl.UUID, dl.Metadata.Get(metadata.Attempts))
				}
				hasStack := strings.Contains(dl.Metadata.Get(metadata.PanicStack), "goroutine")
				if hasStack != (c.wantDLQ == redelivery.ReasonPanic) {
					t.Fatalf("panic stack present = %v", hasStack)
				}
			case c.wantDrop != "":
				d := recv(t, hooks.dropped, "dropped event")
				if d.Reason != c.wantDrop || d.MessageUUID != "m1" || d.Attempts != 1 {
					t.Fatalf("dropped event %+v", d)
				}
				if st := rg.r.Stats(); st.Dropped != 1 || st.Scheduled != 0 || st.DeadLettered != 0 {
					t.Fatalf("stats %+v", st)
				}
			default:
				s := recv(t, hooks.scheduled, "scheduled event")
				if s.Delay != c.wantDelay {
					t.Fatalf("delay %v, want %v", s.Delay, c.wantDelay)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := fake.BlockUntil(ctx, 1); err != nil {
					t.Fatal(err)
				}
				fake.Advance(c.wantDelay - time.Nanosecond)
				select {
				case d := <-rec.ch:
					t.Fatalf("redelivered %v early", d.At)
				default:
				}
				fake.Advance(time.Nanosecond)
				d := recv(t, rec.ch, "redelivery")
				if d.Reconsume != "1" || d.UUID != "m1" {
					t.Fatalf("redelivery %+v", d)
				}
				if c.name == "a panic is retried" && !strings.Contains(d.Metadata.Get(metadata.LastError), "boom") {
					t.Fatalf("last error %q", d.Metadata.Get(metadata.LastError))
				}
			}
		})
	}
}

// A failure caused by the subscription shutting down must be nacked (so the
// backend redelivers it) and must not count as a failed attempt.
func TestMiddleware_nacks_without_counting_when_the_delivery_context_is_cancelled(t *testing.T) {
	r := newMemory(t, redelivery.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	msg := message.NewMessage("m", nil)
	msg.SetContext(ctx)
	cancel()
	_, err := r.Middleware(func(m *message.Message) ([]*message.Message, error) { return nil, m.Context().Err() })(msg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if st := r.Stats(); st != (redelivery.Stats{}) {
		t.Fatalf("stats %+v, want zero", st)
	}
}

func TestMiddleware_sets_reconsume_times_zero_on_a_first_delivery_and_passes_produced_messages(t *testing.T) {
	r := newMemory(t, redelivery.Config{})
	out := message.NewMessage("out", nil)
	var seen string
	produced, err := r.Middleware(func(m *message.Message) ([]*message.Message, error) {
		seen = m.Metadata.Get(metadata.ReconsumeTimes)
		return []*message.Message{out}, nil
	})(message.NewMessage("m", nil))
	if err != nil || len(produced) != 1 || produced[0] != out || seen != "0" {
		t.Fatalf("produced %v err %v reconsume %q", produced, err, seen)
	}
	if st := r.Stats(); st.Succeeded != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMiddleware_reads_the_count_key_as_a_non_negative_decimal_and_anything_else_as_zero(t *testing.T) {
	for _, tc := range []struct {
		bySubscriber  bool
		key, in, want string
	}{
		{false, redelivery.RedeliveryCount, "", "0"},
		{false, redelivery.RedeliveryCount, "3", "3"},
		{false, redelivery.RedeliveryCount, "007", "7"},
		{false, redelivery.RedeliveryCount, "+5", "5"},
		{false, redelivery.RedeliveryCount, "-2", "0"},
		{false, redelivery.RedeliveryCount, "x1", "0"},
		{false, redelivery.RedeliveryCount, "1x", "0"},
		{false, redelivery.RedeliveryCount, "12345678901", "12345678901"},
		{false, redelivery.RedeliveryCount, "99999999999999999999", "0"},
		{true, metadata.ReconsumeTimes, "", "0"},
		{true, metadata.ReconsumeTimes, "16", "16"},
		{true, metadata.ReconsumeTimes, "-1", "0"},
	} {
		cfg := redelivery.Config{ConsumerGroup: "g", Handler: "h", Scheduler: redelivery.NewInMemory(redelivery.InMemoryConfig{}),
			Publisher: &fakepub.Publisher{}}
		if tc.bySubscriber {
			cfg.Scheduler = &subscriberScheduler{}
		}
		r, err := redelivery.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var seen string
		h := r.Middleware(func(m *message.Message) ([]*message.Message, error) {
			seen = m.Metadata.Get(metadata.ReconsumeTimes)
			return nil, nil
		})
		msg := message.NewMessage("m", nil)
		if tc.in != "" {
			msg.Metadata.Set(tc.key, tc.in)
		}
		if _, err := h(msg); err != nil || seen != tc.want {
			t.Errorf("by subscriber %v, %s=%q: handler saw %q (err %v), want %q", tc.bySubscriber, tc.key, tc.in, seen, err, tc.want)
		}
		_ = r.Close()
	}
}

func TestMiddleware_gives_a_message_without_a_metadata_map_one(t *testing.T) {
	r := newMemory(t, redelivery.Config{})
	var seen string
	_, err := r.Middleware(func(m *message.Message) ([]*message.Message, error) {
		seen = m.Metadata.Get(metadata.ReconsumeTimes)
		return nil, nil
	})(&message.Message{UUID: "m"})
	if err != nil || seen != "0" {
		t.Fatalf("err %v reconsume %q, want \"0\"", err, seen)
	}
}

// A scheduler that routes BySubscriber (RocketMQ's native one) gets the
// delivery itself to mark; the middleware nacks it with the policy's limit
// on it, counts from metadata.ReconsumeTimes, reports the scheduler's wait,
// and dead-letters, acked, without a retry topic to replay to.
func TestMiddleware_with_a_scheduler_that_routes_by_the_subscriber_marks_and_nacks_the_delivery(t *testing.T) {
	dlq := &fakepub.Publisher{}
	hooks := newHookRecorder()
	sched := &subscriberScheduler{}
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "g", Handler: "h", Scheduler: sched, DeadLetterPublisher: dlq, Hooks: []any{hooks},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if tg := sched.target; tg.Publisher != nil || tg.RetryTopic != "" || tg.Queue != "g/h" || tg.Observer == nil {
		t.Fatalf("target %+v: a by-subscriber scheduler gets no publisher nor retry topic", tg)
	}
	errDown := errors.New("down")
	var verdict error = errDown
	h := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, verdict })
	for reconsume := 0; reconsume < 16; reconsume++ {
		msg := message.NewMessage("m", nil)
		msg.Metadata.Set(metadata.ReconsumeTimes, strconv.Itoa(reconsume))
		if _, err := h(msg); !errors.Is(err, errDown) {
			t.Fatalf("reconsume %d: err = %v, want the handler error so the subscriber nacks", reconsume, err)
		}
		if got, want := msg.Metadata.Get(markKey), rocketMQDelays[reconsume].String(); got != want {
			t.Fatalf("reconsume %d: marked %q, want %q", reconsume, got, want)
		}
		if got := msg.Metadata.Get(metadata.MaxReconsumeTimes); got != "16" {
			t.Fatalf("reconsume %d: max reconsume times %q, want the policy's 16", reconsume, got)
		}
		if s := recv(t, hooks.scheduled, "scheduled"); s.Delay != rocketMQDelays[reconsume] || s.Route != redelivery.BySubscriber || s.Retry != reconsume+1 {
			t.Fatalf("scheduled %+v", s)
		}
	}
	if got := sched.scheduled(); len(got) != 16 || got[0].Retry != 1 || got[0].LastError != "down" || got[0].FailedAt.IsZero() {
		t.Fatalf("scheduler got %d calls, first %+v", len(got), got[0])
	}
	// The scheduler's wait (rounded up to 2s) is what the hook reports.
	verdict = redelivery.RetryAfter(1500 * time.Millisecond)
	msg := message.NewMessage("m2", nil)
	if _, err := h(msg); err == nil {
		t.Fatal("a retry-after verdict was acked, want a nack")
	}
	if s := recv(t, hooks.scheduled, "scheduled"); s.Delay != 2*time.Second || s.Due.Sub(sched.scheduled()[16].FailedAt) != 2*time.Second {
		t.Fatalf("scheduled %+v, want the scheduler's 2s", s)
	}
	verdict = errDown
	msg = message.NewMessage("m", nil)
	msg.Metadata.Set(metadata.ReconsumeTimes, "16")
	if _, err := h(msg); err != nil {
		t.Fatalf("17th failure: err = %v, want nil (acked after dead-lettering)", err)
	}
	got := dlq.Accepted()
	if len(got) != 1 || got[0].Topic != redelivery.DefaultDeadLetterTopic("g") {
		t.Fatalf("dead-letter publish: %v", got)
	}
	if md := got[0].Msg.Metadata; md.Get(metadata.Attempts) != "17" || md.Get(metadata.RetryTopic) != "" || md.Get(metadata.MaxReconsumeTimes) != "" {
		t.Fatalf("dead letter metadata %v", md)
	}
	// A nack that schedules nothing carries the limit too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msg = message.NewMessage("m3", nil)
	msg.SetContext(ctx)
	verdict = ctx.Err()
	if _, err := h(msg); !errors.Is(err, context.Canceled) || msg.Metadata.Get(metadata.MaxReconsumeTimes) != "16" {
		t.Fatalf("shutdown nack: err %v, limit %q", err, msg.Metadata.Get(metadata.MaxReconsumeTimes))
	}
}

func TestDefaultTopics_are_valid_on_every_backend_and_distinct_per_group_and_handler(t *testing.T) {
	names := []string{
		redelivery.DefaultRetryTopic("billing", "charge"),
		redelivery.DefaultRetryTopic("billing", "refund"),
		redelivery.DefaultRetryTopic("shipping", "charge"),
		redelivery.DefaultRetryTopic("billing.eu/prod", "charge handler %"),
		redelivery.DefaultRetryTopic(strings.Repeat("g", 100), "h"),
		redelivery.DefaultRetryTopic(strings.Repeat("g", 100), "h2"),
		redelivery.DefaultDeadLetterTopic("billing"),
		redelivery.DefaultDeadLetterTopic("shipping"),
	}
	if diff := cmp.Diff("reliamq_retry_billing_charge", names[0]); diff != "" {
		t.Fatal(diff)
	}
	if diff := cmp.Diff("reliamq_dlq_billing", names[6]); diff != "" {
		t.Fatal(diff)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("duplicate name %q", n)
		}
		seen[n] = true
		if len(n) > 40 {
			t.Errorf("%q is longer than 40", n)
		}
		for _, c := range n {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				t.Errorf("%q has %q", n, c)
			}
		}
	}
}

func FuzzDefaultRetryTopic_is_always_a_valid_distinct_topic(f *testing.F) {
	f.Add("billing", "charge")
	f.Add("billing.eu/prod", "charge handler %")
	f.Add(strings.Repeat("g", 200), "h")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, group, handler string) {
		topic := redelivery.DefaultRetryTopic(group, handler)
		if topic != redelivery.DefaultRetryTopic(group, handler) {
			t.Fatal("not deterministic")
		}
		if len(topic) == 0 || len(topic) > 40 {
			t.Fatalf("%q: length %d", topic, len(topic))
		}
		for _, c := range topic {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
				t.Fatalf("%q has %q", topic, c)
			}
		}
		if topic == redelivery.DefaultDeadLetterTopic(group) {
			t.Fatalf("retry and dead-letter topics collide: %q", topic)
		}
	})
}
