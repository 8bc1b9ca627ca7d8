package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/policy"
)

func newSQLiteStore(t *testing.T, clk clock.Clock) *sqlstore.Store {
	t.Helper()
	return sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{Clock: clk})
}

func TestFallback_writes_and_the_store_backlog_match_the_outage(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fake := clocktest.NewFake(start)
	m, reg := newMetrics(t, metrics.Config{Clock: fake})
	st := newSQLiteStore(t, fake)
	if err := m.WatchFallbackStore(st, ""); err != nil {
		t.Fatal(err)
	}
	// An empty queue is reported as 0, not left out.
	wantValue(t, reg, 0, "reliamq_fallback_backlog")
	wantValue(t, reg, 0, "reliamq_fallback_oldest_age_seconds")

	broker := &fakepub.Publisher{Script: []error{
		errBrokerDown, errBrokerDown, // o1: both attempts fail -> stored
		nil,                          // o2: sent
		errBrokerDown, errBrokerDown, // o3: stored
	}}
	rp, err := retry.NewPublisher(broker, retry.Config{
		Policy: policy.Policy{MaxAttempts: 2, Backoff: policy.Fixed(0)}, Hooks: []any{m.RetryHooks()}, Clock: fake}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := fallback.NewPublisher(rp, fallback.Config{Store: st, Hooks: []any{m.Fallback()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"o1", "o2", "o3"} {
		if err := fb.Publish("orders", message.NewMessage(id, []byte("x"))); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		fake.Advance(30 * time.Second)
	}
	wantValue(t, reg, 2, "reliamq_fallback_writes_total", "topic", "orders", "outcome", "stored")
	wantValue(t, reg, 0, "reliamq_fallback_writes_total", "topic", "orders", "outcome", "not_stored") // never happened: created at 0 with the topic
	wantValue(t, reg, 2, "reliamq_publish_retries_total", "topic", "orders")
	wantValue(t, reg, 4, "reliamq_publish_attempts_total", "topic", "orders", "outcome", "error")
	wantValue(t, reg, 1, "reliamq_publish_attempts_total", "topic", "orders", "outcome", "ok")
	// o1 was stored at start, o3 at start+60s; now is start+90s.
	wantValue(t, reg, 2, "reliamq_fallback_backlog")
	wantValue(t, reg, 2, "reliamq_fallback_due")
	wantValue(t, reg, 90, "reliamq_fallback_oldest_age_seconds")
	if got := fb.Stats().Stored; got != 2 {
		t.Fatalf("fallback stored %d, metrics said 2", got)
	}
	lint(t, reg)
}

func TestFallback_store_failure_is_counted_as_not_stored(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	db := sqlstoretest.Open(t, sqlstore.SQLite)
	st := sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{DB: db})
	if err := m.WatchFallbackStore(st, ""); err != nil {
		t.Fatal(err)
	}
	_ = db.Close() // every store operation now fails
	fb, err := fallback.NewPublisher(&fakepub.Publisher{Script: []error{errBrokerDown}},
		fallback.Config{Store: st, Hooks: []any{m.Fallback()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := fb.Publish("orders", message.NewMessage("o1", nil)); err == nil {
		t.Fatal("Publish succeeded with neither broker nor store")
	}
	wantValue(t, reg, 1, "reliamq_fallback_writes_total", "topic", "orders", "outcome", "not_stored")
	// The backlog cannot be read: the gauge is left out and the error counted.
	wantValue(t, reg, -1, "reliamq_fallback_backlog")
	if got := value(t, reg, "reliamq_scrape_errors_total"); got < 1 {
		t.Fatalf("scrape errors = %v, want >= 1", got)
	}
}

func TestRelay_sends_failures_and_poisoned_rows_are_counted_per_topic(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	st := newSQLiteStore(t, nil)
	ctx := context.Background()
	rows, err := sqlstore.Rows("", "orders", []*message.Message{
		message.NewMessage("r1", nil), message.NewMessage("r2", nil), message.NewMessage("r3", nil)})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Insert(ctx, rows...); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchFallbackStore(st, ""); err != nil {
		t.Fatal(err)
	}
	wantValue(t, reg, 3, "reliamq_fallback_backlog")

	// r1 fails, r2 and r3 go through, r1 fails again and is poisoned
	// (MaxAttempts 2).
	broker := &fakepub.Publisher{Script: []error{errBrokerDown, nil, nil, errBrokerDown}}
	relay, err := fallback.NewRelay(fallback.RelayConfig{
		Store: st, Publisher: broker,
		Policy:       policy.Policy{MaxAttempts: 2, Backoff: policy.Fixed(0)},
		PollInterval: 5 * time.Millisecond, Hooks: []any{m.Relay()},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(runCtx) }()
	deadline := time.After(20 * time.Second)
	for value(t, reg, "reliamq_relay_poisoned_total", "topic", "orders") < 1 {
		select {
		case <-deadline:
			cancel()
			<-done
			t.Fatal("relay did not poison the failing row in time")
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantValue(t, reg, 2, "reliamq_relay_sends_total", "topic", "orders", "outcome", "ok")
	wantValue(t, reg, 1, "reliamq_relay_sends_total", "topic", "orders", "outcome", "error")
	wantValue(t, reg, 1, "reliamq_relay_poisoned_total", "topic", "orders")
	wantValue(t, reg, 0, "reliamq_fallback_backlog")
	stats, err := relay.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Sent != 2 || stats.Failed != 1 || stats.Poisoned != 1 {
		t.Fatalf("relay stats %+v disagree with the metrics", stats)
	}
	// The poison queue can be watched too.
	if err := m.WatchFallbackStore(st, "poison"); err != nil {
		t.Fatal(err)
	}
	wantValue(t, reg, 1, "reliamq_fallback_backlog")
}

func TestRelay_outage_state_is_a_gauge_and_a_counter(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	h := m.Relay()
	h.OnRelayOutage(fallback.OutageParams{Down: true, ConsecutiveFailures: 5})
	h.OnRelayOutage(fallback.OutageParams{Down: true, ConsecutiveFailures: 5})
	wantValue(t, reg, 2, "reliamq_relay_down")
	h.OnRelayOutage(fallback.OutageParams{Down: false})
	wantValue(t, reg, 1, "reliamq_relay_down")
	wantValue(t, reg, 2, "reliamq_relay_outages_total")
}

func TestWatchFallbackStore_rejects_bad_arguments(t *testing.T) {
	m, _ := newMetrics(t, metrics.Config{})
	if err := m.WatchFallbackStore(nil, ""); err == nil {
		t.Fatal("nil store accepted")
	}
	st := newSQLiteStore(t, nil)
	if err := m.WatchFallbackStore(st, "bad\x00queue"); err == nil {
		t.Fatal("invalid queue accepted")
	}
	if err := m.WatchAsync(nil); err == nil {
		t.Fatal("nil async publisher accepted")
	}
	if err := m.WatchRedelivery(nil); err == nil {
		t.Fatal("nil redelivery accepted")
	}
}
