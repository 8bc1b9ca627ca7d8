package metrics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// received waits for the n-th message p accepted (counting from 1) and
// returns it.
func received(t *testing.T, p *fakepub.Publisher, n int) *message.Message {
	t.Helper()
	if !p.WaitAccepted(n, 10*time.Second) {
		t.Fatalf("message %d not published (got %d)", n, len(p.Accepted()))
	}
	return p.Accepted()[n-1].Msg
}

func TestRedelivery_scheduled_fired_and_dead_lettered_are_counted_by_attempt(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	fake := clocktest.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	retries := &fakepub.Publisher{}
	dlq := &fakepub.Publisher{}
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "billing", Handler: "charge", Scheduler: redelivery.NewInMemory(redelivery.InMemoryConfig{}),
		Policy:    policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Minute)},
		Publisher: retries, DeadLetterPublisher: dlq, Clock: fake,
		Hooks: []any{m.Redelivery()},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if err := m.WatchRedelivery(r); err != nil {
		t.Fatal(err)
	}
	h := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("card declined") })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := message.NewMessage("m1", []byte("x"))
	msg.Metadata.Set(metadata.OriginalTopic, "payments") // as a redelivered copy carries it
	delivery := msg
	for retry := 1; retry <= 2; retry++ {
		if _, err := h(delivery); err != nil {
			t.Fatalf("delivery %d: %v", retry, err)
		}
		wantValue(t, reg, 1, "reliamq_redelivery_waiting", "consumer_group", "billing", "handler", "charge")
		if err := fake.BlockUntil(ctx, 1); err != nil {
			t.Fatal(err)
		}
		fake.Advance(time.Minute)
		delivery = received(t, retries, retry)
		// The scheduler reports and uncounts the message after its publish
		// returned: wait for that before the next delivery.
		waitFor(t, func() bool { return r.Stats().Waiting == 0 })
	}
	if _, err := h(delivery); err != nil { // third failure: attempts exhausted
		t.Fatal(err)
	}
	dead := received(t, dlq, 1)
	if dead.UUID != "m1" {
		t.Fatalf("dead-lettered %s", dead.UUID)
	}
	labels := []string{"consumer_group", "billing", "handler", "charge"}
	for _, a := range []string{"1", "2"} {
		wantValue(t, reg, 1, "reliamq_redelivery_scheduled_total", append(labels, "attempt", a)...)
		wantValue(t, reg, 1, "reliamq_redelivery_fired_total", append(labels, "attempt", a)...)
	}
	wantValue(t, reg, -1, "reliamq_redelivery_scheduled_total", append(labels, "attempt", "3")...)
	wantValue(t, reg, 1, "reliamq_dead_lettered_total", append(labels, "topic", "payments")...)
	wantValue(t, reg, 0, "reliamq_redelivery_waiting", labels...)
	st := r.Stats()
	if st.Scheduled != 2 || st.Redelivered != 2 || st.DeadLettered != 1 {
		t.Fatalf("redelivery stats %+v disagree with the metrics", st)
	}
	lint(t, reg)
}

func TestRedelivery_attempt_label_is_capped(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	h := m.Redelivery()
	for retry := 1; retry <= 40; retry++ {
		h.OnRedeliveryScheduled(redelivery.ScheduledParams{ConsumerGroup: "g", Handler: "h", Retry: retry})
	}
	h.OnRedelivered(redelivery.RedeliveredParams{ConsumerGroup: "g", Handler: "h", Retry: 1, Err: errBrokerDown})
	h.OnDropped(redelivery.DroppedParams{ConsumerGroup: "g", Handler: "h"})
	wantValue(t, reg, 1, "reliamq_redelivery_scheduled_total", "consumer_group", "g", "handler", "h", "attempt", "16")
	wantValue(t, reg, 24, "reliamq_redelivery_scheduled_total", "consumer_group", "g", "handler", "h", "attempt", "17+")
	wantValue(t, reg, 1, "reliamq_redelivery_publish_failures_total", "consumer_group", "g", "handler", "h")
	wantValue(t, reg, -1, "reliamq_redelivery_fired_total", "consumer_group", "g", "handler", "h", "attempt", "1")
	wantValue(t, reg, 1, "reliamq_redelivery_dropped_total", "consumer_group", "g", "handler", "h")
}

func TestReplay_counts_replayed_and_failed_dead_letters(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	in := make(chan *message.Message, 3)
	ok1 := message.NewMessage("a", nil)
	ok1.Metadata.Set(metadata.OriginalTopic, "payments")
	ok2 := message.NewMessage("b", nil)
	ok2.Metadata.Set(metadata.OriginalTopic, "payments")
	orphan := message.NewMessage("c", nil) // no original topic: cannot be replayed
	in <- ok1
	in <- ok2
	in <- orphan
	close(in)
	out := &fakepub.Publisher{}
	stats, err := redelivery.Replay(context.Background(), redelivery.ReplayConfig{
		Messages: in, Publisher: out, ToOriginalTopic: true, Hooks: []any{m.Replay()}}, nil)
	if !errors.Is(err, redelivery.ErrMissingOriginalTopic) || stats.Replayed != 2 {
		t.Fatalf("Replay: %+v, %v", stats, err)
	}
	wantValue(t, reg, 2, "reliamq_dlq_replays_total", "topic", "payments", "outcome", "ok")
	wantValue(t, reg, 1, "reliamq_dlq_replays_total", "topic", "", "outcome", "error")
}

func TestWatchRedelivery_reports_durable_waits_from_the_store_queue(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	st := newSQLiteStore(t, nil)
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "billing", Handler: "charge", Scheduler: redelivery.NewDurable(redelivery.DurableConfig{Store: st}),
		Policy:    policy.Policy{MaxAttempts: 5, Backoff: policy.Fixed(time.Hour)},
		Publisher: &fakepub.Publisher{},
		Hooks:     []any{m.Redelivery()},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if err := m.WatchRedelivery(r); err != nil {
		t.Fatal(err)
	}
	labels := []string{"consumer_group", "billing", "handler", "charge"}
	wantValue(t, reg, 0, "reliamq_redelivery_waiting", labels...)
	h := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("declined") })
	for _, id := range []string{"a", "b", "c"} {
		if _, err := h(message.NewMessage(id, nil)); err != nil {
			t.Fatal(err)
		}
	}
	wantValue(t, reg, 3, "reliamq_redelivery_waiting", labels...)
	wantValue(t, reg, 3, "reliamq_redelivery_scheduled_total", append(labels, "attempt", "1")...)
	stats, err := st.Stats(context.Background(), "billing/charge")
	if err != nil {
		t.Fatal(err)
	}
	if stats.Backlog != 3 {
		t.Fatalf("store queue billing/charge holds %d rows; the gauge said 3", stats.Backlog)
	}
}
