package metrics_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// histogram returns the sample count and sum of the histogram series
// name{labels...}; ok is false when the series does not exist.
func histogram(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (count uint64, sum float64, ok bool) {
	t.Helper()
	if h := series(t, reg, name, labels...).GetHistogram(); h != nil {
		return h.GetSampleCount(), h.GetSampleSum(), true
	}
	return 0, 0, false
}

func wantHistogram(t *testing.T, reg *prometheus.Registry, count uint64, sum float64, name string, labels ...string) {
	t.Helper()
	c, s, ok := histogram(t, reg, name, labels...)
	if !ok || c != count || s != sum {
		t.Errorf("%s%v: count %d sum %v (exists %v), want count %d sum %v", name, labels, c, s, ok, count, sum)
	}
}

// slowPublisher advances the fake clock by took on every call, as a broker
// that takes that long would, and fails the first failN calls.
func slowPublisher(fake *clocktest.Fake, took time.Duration, failN int) *fakepub.Publisher {
	var mu sync.Mutex
	return &fakepub.Publisher{Func: func(string, []*message.Message) error {
		fake.Advance(took)
		mu.Lock()
		defer mu.Unlock()
		if failN > 0 {
			failN--
			return errBrokerDown
		}
		return nil
	}}
}

// The issue: middleware/metrics had no histogram at all.
func TestHistograms_observe_send_latency_time_in_the_fallback_table_handler_duration_and_redelivery_wait(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fake := clocktest.NewFake(start)
	m, reg := newMetrics(t, metrics.Config{Clock: fake})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Send latency: every attempt through retry.Publisher, 2s each; the
	// first fails.
	rp, err := retry.NewPublisher(slowPublisher(fake, 2*time.Second, 1), retry.Config{
		Policy: policy.Policy{MaxAttempts: 2, Backoff: policy.Fixed(0)}, Clock: fake, Hooks: []any{m.RetryHooks()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rp.Publish("orders", message.NewMessage("p1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	wantHistogram(t, reg, 1, 2, "reliamq_publish_duration_seconds", "topic", "orders", "outcome", "error")
	wantHistogram(t, reg, 1, 2, "reliamq_publish_duration_seconds", "topic", "orders", "outcome", "ok")
	// A send that is not retried (one attempt), 500ms.
	once, err := retry.NewPublisher(slowPublisher(fake, 500*time.Millisecond, 0), retry.Config{
		Policy: policy.Policy{MaxAttempts: 1}, Clock: fake, Hooks: []any{m.RetryHooks()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := once.Publish("invoices", message.NewMessage("p2", nil)); err != nil {
		t.Fatal(err)
	}
	wantHistogram(t, reg, 1, 0.5, "reliamq_publish_duration_seconds", "topic", "invoices", "outcome", "ok")

	// Time in the fallback table: a row stored now, relayed 90s later.
	st := newSQLiteStore(t, fake)
	fb, err := fallback.NewPublisher(&fakepub.Publisher{Script: []error{errBrokerDown}}, fallback.Config{Store: st}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fb.Publish("orders", message.NewMessage("f1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	fake.Advance(90 * time.Second)
	relay, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: &fakepub.Publisher{}, Clock: fake,
		Hooks: []any{m.Relay()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	for value(t, reg, "reliamq_relay_sends_total", "topic", "orders", "outcome", "ok") < 1 {
		if ctx.Err() != nil {
			t.Fatal("the relay never sent the stored row")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopRelay()
	if err := <-relayDone; err != nil {
		t.Fatal(err)
	}
	wantHistogram(t, reg, 1, 90, "reliamq_fallback_stored_seconds", "topic", "orders")

	// Handler duration and the redelivery wait: the handler runs 3s and
	// fails, the retry is due 10s later and published then; the redelivery
	// runs 1s and succeeds.
	retryPub := &fakepub.Publisher{}
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "billing", Handler: "charge", Scheduler: redelivery.NewInMemory(redelivery.InMemoryConfig{}), Publisher: retryPub,
		Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(10 * time.Second)}, Clock: fake,
		Hooks: []any{m.Redelivery()},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
		if msg.Metadata.Get(metadata.ReconsumeTimes) == "0" {
			fake.Advance(3 * time.Second)
			return nil, errors.New("declined")
		}
		fake.Advance(time.Second)
		return nil, nil
	})
	first := message.NewMessage("h1", []byte("x"))
	first.Metadata.Set(metadata.OriginalTopic, "orders")
	if _, err := h(first); err != nil {
		t.Fatal(err)
	}
	failedAt := fake.Now()
	if err := fake.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(10 * time.Second)
	for r.Stats().Redelivered < 1 {
		if ctx.Err() != nil {
			t.Fatal("the retry was never published")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if waited := fake.Now().Sub(failedAt); waited != 10*time.Second {
		t.Fatalf("test clock moved %v, want 10s", waited)
	}
	wantHistogram(t, reg, 1, 3, "reliamq_handler_duration_seconds", "consumer_group", "billing", "handler", "charge", "outcome", "error")
	wantHistogram(t, reg, 1, 10, "reliamq_redelivery_delay_seconds", "consumer_group", "billing", "handler", "charge")
	second := message.NewMessage("h1", []byte("x"))
	second.Metadata.Set(metadata.OriginalTopic, "orders")
	second.Metadata.Set(metadata.RedeliveryCount, "1")
	if _, err := h(second); err != nil {
		t.Fatal(err)
	}
	wantHistogram(t, reg, 1, 1, "reliamq_handler_duration_seconds", "consumer_group", "billing", "handler", "charge", "outcome", "ok")
	lint(t, reg)
}

// families lists the metric families of one scrape.
func families(t *testing.T, reg *prometheus.Registry) []string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	sort.Strings(names)
	return names
}

// The issue: families appeared only at their first event, so alerts on them
// saw no series, and a never-watched component's gauges were absent.
func TestNew_every_family_is_present_from_the_start_with_zero_values(t *testing.T) {
	all := []string{
		"reliamq_async_caller_runs_total", "reliamq_async_in_flight", "reliamq_async_leftovers_total",
		"reliamq_async_max_workers", "reliamq_async_queue_capacity", "reliamq_async_queue_depth",
		"reliamq_async_queue_fill_ratio", "reliamq_async_rejections_total", "reliamq_async_sends_total",
		"reliamq_async_workers", "reliamq_dead_lettered_total", "reliamq_dlq_replays_total",
		"reliamq_fallback_backlog", "reliamq_fallback_due", "reliamq_fallback_oldest_age_seconds",
		"reliamq_fallback_stored_seconds", "reliamq_fallback_writes_total", "reliamq_handler_duration_seconds",
		"reliamq_publish_attempts_total", "reliamq_publish_duration_seconds", "reliamq_publish_give_ups_total",
		"reliamq_publish_permanent_failures_total", "reliamq_publish_retries_total",
		"reliamq_redelivery_delay_seconds", "reliamq_redelivery_dropped_total", "reliamq_redelivery_fired_total",
		"reliamq_redelivery_publish_failures_total", "reliamq_redelivery_scheduled_total",
		"reliamq_redelivery_waiting", "reliamq_relay_down", "reliamq_relay_outages_total",
		"reliamq_relay_poisoned_total", "reliamq_relay_sends_total", "reliamq_scrape_errors_total",
	}
	fake := clocktest.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m, reg := newMetrics(t, metrics.Config{Clock: fake, Topics: []string{"orders"}})

	// Nothing watched yet: the unlabelled families are there, at 0.
	for _, name := range []string{"reliamq_fallback_backlog", "reliamq_async_queue_depth", "reliamq_async_queue_fill_ratio", "reliamq_relay_down"} {
		wantValue(t, reg, 0, name)
	}
	wantValue(t, reg, 0, "reliamq_async_sends_total", "outcome", "accepted")
	wantValue(t, reg, 0, "reliamq_async_sends_total", "outcome", "error")

	inner := gochannel.NewGoChannel(gochannel.Config{}, nil)
	defer inner.Close()
	pool, err := async.NewPublisher(inner, async.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := m.WatchAsync(pool); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchFallbackStore(newSQLiteStore(t, fake), ""); err != nil {
		t.Fatal(err)
	}
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "billing", Handler: "charge", Scheduler: redelivery.NewInMemory(redelivery.InMemoryConfig{}), Publisher: inner,
		Policy: policy.Policy{MaxAttempts: 4, Backoff: policy.Fixed(time.Second)}, Clock: fake,
		Hooks: []any{m.Redelivery()},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := m.WatchRedelivery(r); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(all, families(t, reg)); diff != "" {
		t.Errorf("families before any event (-want +got):\n%s", diff)
	}
	// The known label combinations, each at 0.
	for _, o := range []string{"ok", "error", "permanent", "canceled"} {
		wantValue(t, reg, 0, "reliamq_publish_attempts_total", "topic", "orders", "outcome", o)
	}
	for _, o := range []string{"permanent", "exhausted", "budget", "canceled"} {
		wantValue(t, reg, 0, "reliamq_publish_give_ups_total", "topic", "orders", "outcome", o)
	}
	wantValue(t, reg, 0, "reliamq_fallback_writes_total", "topic", "orders", "outcome", "stored")
	wantValue(t, reg, 0, "reliamq_fallback_writes_total", "topic", "orders", "outcome", "not_stored")
	wantValue(t, reg, 0, "reliamq_relay_sends_total", "topic", "orders", "outcome", "error")
	wantValue(t, reg, 0, "reliamq_dead_lettered_total", "topic", "orders", "consumer_group", "billing", "handler", "charge")
	for _, a := range []string{"1", "2", "3"} { // MaxAttempts 4: three retries
		wantValue(t, reg, 0, "reliamq_redelivery_scheduled_total", "consumer_group", "billing", "handler", "charge", "attempt", a)
		wantValue(t, reg, 0, "reliamq_redelivery_fired_total", "consumer_group", "billing", "handler", "charge", "attempt", a)
	}
	wantValue(t, reg, -1, "reliamq_redelivery_scheduled_total", "consumer_group", "billing", "handler", "charge", "attempt", "4")
	wantValue(t, reg, 0, "reliamq_redelivery_waiting", "consumer_group", "billing", "handler", "charge")
	wantHistogram(t, reg, 0, 0, "reliamq_publish_duration_seconds", "topic", "orders", "outcome", "ok")
	wantHistogram(t, reg, 0, 0, "reliamq_fallback_stored_seconds", "topic", "orders")
	wantHistogram(t, reg, 0, 0, "reliamq_handler_duration_seconds", "consumer_group", "billing", "handler", "charge", "outcome", "error")
	wantHistogram(t, reg, 0, 0, "reliamq_redelivery_delay_seconds", "consumer_group", "billing", "handler", "charge")
	lint(t, reg)

	// A topic first seen at run time gets all its series at once.
	pub, err := retry.NewPublisher(&fakepub.Publisher{}, retry.Config{Policy: policy.Policy{MaxAttempts: 1}, Hooks: []any{m.RetryHooks()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("invoices", message.NewMessage("i1", nil)); err != nil {
		t.Fatal(err)
	}
	wantValue(t, reg, 1, "reliamq_publish_attempts_total", "topic", "invoices", "outcome", "ok")
	wantValue(t, reg, 0, "reliamq_fallback_writes_total", "topic", "invoices", "outcome", "stored")
	wantValue(t, reg, 0, "reliamq_relay_poisoned_total", "topic", "invoices")
}

// The issue: async_sends_total{outcome="ok"} counted calls that ended in the
// fallback table; the outcome now says what it counts.
func TestWatchAsync_counts_a_call_stored_by_the_fallback_as_accepted_not_ok(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	st := newSQLiteStore(t, nil)
	fb, err := fallback.NewPublisher(&fakepub.Publisher{Script: []error{errBrokerDown}}, fallback.Config{Store: st, Hooks: []any{m.Fallback()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := async.NewPublisher(fb, async.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WatchAsync(pool); err != nil {
		t.Fatal(err)
	}
	if err := pool.Publish("orders", message.NewMessage("a1", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, reg, 1, "reliamq_async_sends_total", "outcome", "accepted")
	wantValue(t, reg, -1, "reliamq_async_sends_total", "outcome", "ok")
	wantValue(t, reg, 1, "reliamq_fallback_writes_total", "topic", "orders", "outcome", "stored")
}
