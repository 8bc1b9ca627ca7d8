package fallback_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/policy"
)

// waitFor polls cond on the real clock (the relay runs on a fake one).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRelay_Notify_claims_new_rows_without_waiting_for_the_poll_interval(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	rec := &fakepub.Publisher{}
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: rec, PollInterval: time.Hour})
	h.idle() // the first claim found nothing; the relay waits an hour

	for i := range 3 {
		insertRows(t, st, "", 1)
		h.relay.Notify()
		waitFor(t, "the notified row to be sent", func() bool { return len(rec.Accepted()) == i+1 })
	}
	waitFor(t, "the sent rows to be deleted", func() bool { return len(rowsOf(t, st, "")) == 0 })
	if !clk.Now().Equal(t0) {
		t.Fatalf("the clock moved to %v; the rows must be sent without it", clk.Now())
	}
}

func TestRelay_Notify_does_not_cut_the_outage_backoff_short(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	var down atomic.Bool
	down.Store(true)
	rec := &fakepub.Publisher{Func: func(string, []*message.Message) error {
		if down.Load() {
			return errBrokerDown
		}
		return nil
	}}
	insertRows(t, st, "", 1)
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: rec, FailureThreshold: 1,
		PollInterval: time.Second, OutageBackoff: policy.Fixed(time.Minute), Policy: fixedPolicy(0, time.Millisecond)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntilDue(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatalf("the relay never waited for its outage backoff: %v", err)
	}
	calls := rec.Calls()
	if calls != 1 {
		t.Fatalf("%d sends before the outage wait, want 1", calls)
	}
	// Rows keep coming while the broker is down: no Notify may turn into a probe.
	for range 20 {
		insertRows(t, st, "", 1)
		h.relay.Notify()
	}
	time.Sleep(200 * time.Millisecond)
	if got := rec.Calls(); got != calls {
		t.Fatalf("Notify during an outage made %d sends; the relay must wait out OutageBackoff", got-calls)
	}
	down.Store(false)
	clk.Advance(time.Minute)
	waitFor(t, "every row to be sent after the backoff", func() bool { return len(rec.Accepted()) == 21 })
	if s, _ := h.relay.Stats(context.Background()); s.Down {
		t.Error("the relay still considers the broker down")
	}
}
