package metrics_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

// TestOutage_counters_match_what_happened drives the whole publish stack,
// async(fallback(retry(broker))) with RetryHooks plus a relay, through an outage and
// checks each counter against the messages counted by UUID.
func TestOutage_counters_match_what_happened(t *testing.T) {
	const perPhase = 40
	const maxAttempts = 3
	m, reg := newMetrics(t, metrics.Config{})
	st := newSQLiteStore(t, nil)
	if err := m.WatchFallbackStore(st, ""); err != nil {
		t.Fatal(err)
	}

	gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1000}, watermill.NopLogger{})
	defer func() { _ = gc.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	delivered, err := gc.Subscribe(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	consumed := make(chan struct{}, 4*perPhase)
	go func() {
		for msg := range delivered {
			mu.Lock()
			seen[msg.UUID]++
			mu.Unlock()
			msg.Ack()
			consumed <- struct{}{}
		}
	}()

	// The broker: while down, every Publish fails with a retryable error.
	var down atomic.Bool
	broker := &fakepub.Publisher{Func: func(topic string, msgs []*message.Message) error {
		if down.Load() {
			return errBrokerDown
		}
		return gc.Publish(topic, msgs...)
	}}
	sendPolicy := policy.Policy{MaxAttempts: maxAttempts, Backoff: policy.Fixed(0)}
	retried, err := retry.NewPublisher(broker, retry.Config{Policy: sendPolicy, Hooks: []any{m.RetryHooks()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := fallback.NewPublisher(retried, fallback.Config{Store: st, Hooks: []any{m.Fallback()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := async.NewPublisher(fb, async.Config{CoreWorkers: 4, MaxWorkers: 4, QueueCapacity: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WatchAsync(pool); err != nil {
		t.Fatal(err)
	}

	sent := map[string]bool{}
	publish := func(phase string) {
		for i := 0; i < perPhase; i++ {
			id := fmt.Sprintf("%s-%d", phase, i)
			sent[id] = true
			if err := pool.Publish("orders", message.NewMessage(id, []byte(id))); err != nil {
				t.Fatalf("publish %s: %v", id, err)
			}
		}
	}
	down.Store(true)
	publish("down")
	// Wait for the pool to finish the outage phase before the broker returns,
	// so the phases do not overlap.
	waitFor(t, func() bool { st := pool.Stats(); return st.Done+st.Failed == perPhase })
	down.Store(false)
	publish("up")
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, reg, perPhase, "reliamq_fallback_backlog")

	relay, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: retried, PollInterval: 5 * time.Millisecond,
		Hooks: []any{m.Relay()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	for i := 0; i < 2*perPhase; i++ {
		select {
		case <-consumed:
		case <-ctx.Done():
			stopRelay()
			t.Fatalf("only %d of %d messages delivered", i, 2*perPhase)
		}
	}
	waitFor(t, func() bool { return value(t, reg, "reliamq_fallback_backlog") == 0 })
	stopRelay()
	if err := <-relayDone; err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	lost, dup := 0, 0
	for id := range sent {
		switch n := seen[id]; {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	mu.Unlock()
	if lost != 0 || dup != 0 {
		t.Fatalf("sent %d, lost %d, duplicated %d", len(sent), lost, dup)
	}

	// What happened: perPhase messages failed maxAttempts times each and were
	// stored; perPhase went straight through; the relay sent the stored ones.
	wantValue(t, reg, perPhase*maxAttempts, "reliamq_publish_attempts_total", "topic", "orders", "outcome", "error")
	wantValue(t, reg, 2*perPhase, "reliamq_publish_attempts_total", "topic", "orders", "outcome", "ok")
	wantValue(t, reg, perPhase*(maxAttempts-1), "reliamq_publish_retries_total", "topic", "orders")
	wantValue(t, reg, perPhase, "reliamq_fallback_writes_total", "topic", "orders", "outcome", "stored")
	wantValue(t, reg, perPhase, "reliamq_relay_sends_total", "topic", "orders", "outcome", "ok")
	wantValue(t, reg, 0, "reliamq_relay_sends_total", "topic", "orders", "outcome", "error")
	wantValue(t, reg, 0, "reliamq_publish_permanent_failures_total", "topic", "orders")
	// The fallback publisher turned every failed send into a stored row, so
	// the pool saw no failure at all.
	wantValue(t, reg, 2*perPhase, "reliamq_async_sends_total", "outcome", "accepted")
	wantValue(t, reg, 0, "reliamq_async_sends_total", "outcome", "error")
	wantValue(t, reg, 0, "reliamq_fallback_backlog")
	lint(t, reg)
}

// waitFor polls cond until it holds or 20 s passed.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
