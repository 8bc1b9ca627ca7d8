package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// relayHarness runs a relay on a fake clock and lets the test wait until the
// relay is idle (waiting on its clock).
type relayHarness struct {
	t      *testing.T
	clk    *clocktest.Fake
	st     *sqlstore.Store
	relay  *fallback.Relay
	cancel context.CancelFunc
	done   chan error
}

func startRelay(t *testing.T, clk *clocktest.Fake, cfg fallback.RelayConfig) *relayHarness {
	t.Helper()
	cfg.Clock = clk
	r, err := fallback.NewRelay(cfg, nil)
	if err != nil {
		t.Fatalf("new relay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, _ := cfg.Store.(*sqlstore.Store)
	h := &relayHarness{t: t, clk: clk, st: st, relay: r, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- r.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// idle waits until the relay waits on the clock.
func (h *relayHarness) idle() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.clk.BlockUntil(ctx, 1); err != nil {
		h.t.Fatalf("relay never went idle: %v", err)
	}
}

// tick moves the clock by d and waits until the relay is idle again.
func (h *relayHarness) tick(d time.Duration) {
	h.t.Helper()
	h.idle()
	h.clk.Advance(d)
	// The fired timer is gone; wait for the relay's next one.
	h.idle()
}

func (h *relayHarness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v", err)
		}
		h.done <- nil // allow a second stop
	case <-time.After(10 * time.Second):
		h.t.Errorf("Run did not return after cancel")
	}
}

func insertRows(t *testing.T, st *sqlstore.Store, queue string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("uuid-%05d", i)
	}
	insertMessages(t, st, queue, "orders", ids)
	return ids
}

// insertRowsOn stores n rows for topic under fresh random UUIDs, so rows of
// different tests never look alike at a shared broker.
func insertRowsOn(t *testing.T, st *sqlstore.Store, topic string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = watermill.NewUUID()
	}
	insertMessages(t, st, "", topic, ids)
	return ids
}

func insertMessages(t *testing.T, st *sqlstore.Store, queue, topic string, ids []string) {
	t.Helper()
	msgs := make([]sqlstore.Message, len(ids))
	for i, id := range ids {
		msgs[i] = sqlstore.Message{Queue: queue, Topic: topic, UUID: id, Payload: []byte("p" + id),
			Metadata: map[string]string{"k": id}, FirstError: "broker down"}
	}
	if err := st.Insert(context.Background(), msgs...); err != nil {
		t.Fatalf("insert: %v", err)
	}
}

func rowsOf(t *testing.T, st *sqlstore.Store, queue string) []sqlstore.Message {
	t.Helper()
	rows, err := st.List(context.Background(), sqlstore.Filter{Queue: queue, Limit: 100000})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return rows
}

func fixedPolicy(attempts int, d time.Duration) policy.Policy {
	return policy.Policy{MaxAttempts: attempts, Backoff: policy.Fixed(d)}
}

type relayHooks struct {
	mu       sync.Mutex
	sent     []fallback.SentParams
	failed   []fallback.FailedParams
	poisoned []fallback.PoisonedParams
	outages  []fallback.OutageParams
}

func (h *relayHooks) OnRelaySent(p fallback.SentParams) {
	h.mu.Lock()
	h.sent = append(h.sent, p)
	h.mu.Unlock()
}
func (h *relayHooks) OnRelayFailed(p fallback.FailedParams) {
	h.mu.Lock()
	h.failed = append(h.failed, p)
	h.mu.Unlock()
}
func (h *relayHooks) OnRelayPoisoned(p fallback.PoisonedParams) {
	h.mu.Lock()
	h.poisoned = append(h.poisoned, p)
	h.mu.Unlock()
}
func (h *relayHooks) OnRelayOutage(p fallback.OutageParams) {
	h.mu.Lock()
	h.outages = append(h.outages, p)
	h.mu.Unlock()
}

func TestRelay_deletes_rows_after_successful_send_keeping_uuid_payload_and_metadata(t *testing.T) {
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) {
			clk := clocktest.NewFake(t0)
			st := newStore(t, be, nil, clk)
			ids := insertRows(t, st, "", 250)
			rec := &fakepub.Publisher{}
			hooks := &relayHooks{}
			h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: rec, Hooks: []any{hooks}})
			h.idle()
			got := sentOf(rec)
			if len(got) != len(ids) {
				t.Fatalf("sent %d, want %d", len(got), len(ids))
			}
			for i, s := range got {
				want := sent{Topic: "orders", UUID: ids[i], Payload: "p" + ids[i], Metadata: map[string]string{"k": ids[i]}}
				if diff := cmp.Diff(want, s); diff != "" {
					t.Fatalf("message %d (-want +got):\n%s", i, diff)
				}
			}
			if left := rowsOf(t, st, ""); len(left) != 0 {
				t.Errorf("%d rows left after a successful drain", len(left))
			}
			s, err := h.relay.Stats(context.Background())
			if err != nil {
				t.Fatalf("stats: %v", err)
			}
			if s.Claimed != 250 || s.Sent != 250 || s.Backlog != 0 || s.Failed != 0 || len(hooks.sent) != 250 {
				t.Errorf("stats %+v, %d sent hooks", s, len(hooks.sent))
			}
			h.stop()
		})
	}
}

func TestRelay_reschedules_a_failed_row_under_its_policy(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	insertRows(t, st, "", 1)
	rec := &fakepub.Publisher{Script: []error{errBrokerDown, errBrokerDown}}
	hooks := &relayHooks{}
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: rec, PollInterval: time.Second,
		Policy: policy.Policy{MaxAttempts: 5, Backoff: policy.Exponential(10*time.Second, 2, 0)}, Hooks: []any{hooks}})
	h.idle()
	rows := rowsOf(t, st, "")
	if len(rows) != 1 || rows[0].Attempts != 1 || rows[0].LastError != errBrokerDown.Error() ||
		rows[0].FirstError != "broker down" || !rows[0].NextAttemptAt.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("after one failure: %+v", rows)
	}
	h.tick(9 * time.Second) // not due yet
	if n := rec.Calls(); n != 1 {
		t.Fatalf("%d sends before the row was due, want 1", n)
	}
	h.tick(time.Second) // due: fails again, next in 20s
	rows = rowsOf(t, st, "")
	if len(rows) != 1 || rows[0].Attempts != 2 || !rows[0].NextAttemptAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("after two failures: %+v", rows)
	}
	h.tick(20 * time.Second)
	if left := rowsOf(t, st, ""); len(left) != 0 || len(sentOf(rec)) != 1 {
		t.Fatalf("after success: %d rows left, %d sent", len(left), len(sentOf(rec)))
	}
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if len(hooks.failed) != 2 || hooks.failed[1].Attempt != 2 || !errors.Is(hooks.failed[1].Err, errBrokerDown) ||
		len(hooks.sent) != 1 || hooks.sent[0].Attempt != 3 {
		t.Errorf("hooks: failed %+v sent %+v", hooks.failed, hooks.sent)
	}
}

// RelayConfig.Rand is the jitter's only random source: a fixed sequence gives
// known due times (the relay drew from the global math/rand, so no test could
// pin a jittered reschedule).
func TestRelay_reschedules_a_failed_row_after_the_jittered_delay_its_Rand_draws(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	insertRows(t, st, "", 1)
	rec := &fakepub.Publisher{Script: []error{errBrokerDown, errBrokerDown}}
	var mu sync.Mutex
	draws := []float64{0.25, 0.75}
	hooks := &relayHooks{}
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: rec, PollInterval: time.Second,
		// Exponential 10s, 20s with ±50 %: u=0.25 gives 0.75x, u=0.75 gives 1.25x.
		Policy: policy.Policy{MaxAttempts: 5, Backoff: policy.Exponential(10*time.Second, 2, 0), Jitter: policy.UniformJitter(0.5)},
		Rand: func() float64 {
			mu.Lock()
			defer mu.Unlock()
			u := draws[0]
			draws = draws[1:]
			return u
		},
		Hooks: []any{hooks}})
	h.idle()
	if rows := rowsOf(t, st, ""); len(rows) != 1 || !rows[0].NextAttemptAt.Equal(t0.Add(7500*time.Millisecond)) {
		t.Fatalf("after one failure: %+v, want the row due at t0+7.5s", rows)
	}
	h.tick(7500 * time.Millisecond) // due: fails again, next in 25s
	if rows := rowsOf(t, st, ""); len(rows) != 1 || !rows[0].NextAttemptAt.Equal(t0.Add(32500*time.Millisecond)) {
		t.Fatalf("after two failures: %+v, want the row due at t0+32.5s", rows)
	}
	h.tick(25 * time.Second)
	if left := rowsOf(t, st, ""); len(left) != 0 || len(rec.UUIDs()) != 1 {
		t.Fatalf("after success: %d rows left, %d sent", len(left), len(rec.UUIDs()))
	}
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	var due []time.Duration
	for _, f := range hooks.failed {
		due = append(due, f.NextAttemptAt.Sub(t0))
	}
	if diff := cmp.Diff([]time.Duration{7500 * time.Millisecond, 32500 * time.Millisecond}, due); diff != "" {
		t.Errorf("FailedParams.NextAttemptAt - t0 (-want +got):\n%s", diff)
	}
}

func TestRelay_poisons_a_row_after_the_policys_last_attempt_with_its_reason(t *testing.T) {
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) {
			clk := clocktest.NewFake(t0)
			st := newStore(t, be, nil, clk)
			insertRows(t, st, "", 1)
			rec := &fakepub.Publisher{Err: errBrokerDown}
			hooks := &relayHooks{}
			h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: rec, Policy: fixedPolicy(3, time.Second),
				PollInterval: time.Second, Hooks: []any{hooks}})
			h.tick(time.Second)
			h.tick(time.Second)
			if n := rec.Calls(); n != 3 {
				t.Fatalf("%d sends, want 3", n)
			}
			if left := rowsOf(t, st, ""); len(left) != 0 {
				t.Fatalf("%d rows left in the queue after poisoning", len(left))
			}
			poison := rowsOf(t, st, "poison")
			if len(poison) != 1 {
				t.Fatalf("%d poison rows, want 1", len(poison))
			}
			p := poison[0]
			if p.UUID != "uuid-00000" || p.Topic != "orders" || string(p.Payload) != "puuid-00000" || p.Attempts != 3 ||
				p.FirstError != "broker down" || !strings.HasPrefix(p.LastError, fallback.ReasonMaxAttempts) {
				t.Errorf("poison row %+v", p)
			}
			wantMD := map[string]string{
				"k":                         "uuid-00000",
				metadata.FallbackAttempts:   "3",
				metadata.FallbackFirstError: "broker down",
				metadata.FallbackLastError:  errBrokerDown.Error(),
				metadata.DeadLetterReason:   fallback.ReasonMaxAttempts,
				metadata.OriginalTopic:      "orders",
			}
			if diff := cmp.Diff(wantMD, p.Metadata); diff != "" {
				t.Errorf("poison metadata (-want +got):\n%s", diff)
			}
			hooks.mu.Lock()
			if len(hooks.poisoned) != 1 || hooks.poisoned[0].Reason != fallback.ReasonMaxAttempts || hooks.poisoned[0].Attempts != 3 {
				t.Errorf("poisoned hooks %+v", hooks.poisoned)
			}
			hooks.mu.Unlock()
			h.stop()
		})
	}
}

func TestRelay_poisons_at_once_on_a_permanent_error(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	insertRows(t, st, "", 3)
	refused := policy.Permanent(errors.New("no permission for topic"))
	rec := &fakepub.Publisher{Func: func(_ string, msgs []*message.Message) error {
		if msgs[0].UUID == "uuid-00001" {
			return refused
		}
		return nil
	}}
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: rec, Policy: fixedPolicy(10, time.Second), FailureThreshold: 1})
	h.idle()
	poison := rowsOf(t, st, "poison")
	if len(poison) != 1 || poison[0].UUID != "uuid-00001" || poison[0].Metadata[metadata.DeadLetterReason] != fallback.ReasonPermanent {
		t.Fatalf("poison rows %+v", poison)
	}
	if got := len(sentOf(rec)); got != 2 {
		t.Errorf("sent %d, want the other 2 (a permanent error must not stop the batch)", got)
	}
	if s, _ := h.relay.Stats(context.Background()); s.Down || s.Poisoned != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestRelay_publishes_poisoned_messages_to_the_poison_topic(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	insertRows(t, st, "", 1)
	rec := &fakepub.Publisher{Func: func(topic string, _ []*message.Message) error {
		if topic == "orders" {
			return policy.Permanent(errors.New("topic refused"))
		}
		return nil
	}}
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: rec, PoisonTopic: "orders.poison"})
	h.idle()
	got := sentOf(rec)
	if len(got) != 1 || got[0].Topic != "orders.poison" || got[0].UUID != "uuid-00000" ||
		got[0].Metadata[metadata.DeadLetterReason] != fallback.ReasonPermanent || got[0].Metadata[metadata.OriginalTopic] != "orders" {
		t.Fatalf("poison topic got %+v", got)
	}
	if n := len(rowsOf(t, st, "")) + len(rowsOf(t, st, "poison")); n != 0 {
		t.Errorf("%d rows left", n)
	}
}

func TestRelay_keeps_the_row_when_the_poison_topic_refuses_it_too(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	insertRows(t, st, "", 1)
	rec := &fakepub.Publisher{Err: policy.Permanent(errors.New("refused"))}
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: rec, PoisonTopic: "orders.poison"})
	h.idle()
	rows := rowsOf(t, st, "")
	if len(rows) != 1 || rows[0].Attempts != 1 {
		t.Fatalf("rows %+v, want the row kept with one attempt", rows)
	}
}

func TestRelay_backs_off_as_a_whole_while_the_broker_is_down_and_resumes_within_two_polls(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	insertRows(t, st, "", 100)
	var down atomic.Bool
	down.Store(true)
	rec := &fakepub.Publisher{Func: func(string, []*message.Message) error {
		if down.Load() {
			return errBrokerDown
		}
		return nil
	}}
	hooks := &relayHooks{}
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: rec, PollInterval: time.Second,
		FailureThreshold: 5, Policy: fixedPolicy(0, time.Millisecond), Hooks: []any{hooks}})
	h.idle()
	if n := rec.Calls(); n != 5 {
		t.Fatalf("%d sends in the first batch, want the 5 of FailureThreshold", n)
	}
	s, _ := h.relay.Stats(context.Background())
	if !s.Down || s.Failed != 5 || s.Requeued != 95 {
		t.Fatalf("stats after tripping: %+v", s)
	}
	untouched := 0
	for _, r := range rowsOf(t, st, "") {
		if r.Attempts == 0 && r.LeasedBy == "" {
			untouched++
		}
	}
	if untouched != 95 {
		t.Errorf("%d rows released without an attempt, want 95", untouched)
	}
	// Ten probe intervals while down: one send each.
	for range 10 {
		h.tick(2 * time.Second)
	}
	if n := rec.Calls(); n != 15 {
		t.Fatalf("%d sends after 10 probe intervals, want 15 (one per probe)", n)
	}
	// The broker comes back: within two poll intervals everything is sent.
	down.Store(false)
	h.tick(time.Second)
	h.tick(time.Second)
	if left := rowsOf(t, st, ""); len(left) != 0 {
		t.Fatalf("%d rows left two poll intervals after the broker came back", len(left))
	}
	if got := len(sentOf(rec)); got != 100 {
		t.Errorf("sent %d, want 100", got)
	}
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	if len(hooks.outages) != 2 || !hooks.outages[0].Down || hooks.outages[0].ConsecutiveFailures != 5 || hooks.outages[1].Down {
		t.Errorf("outage hooks %+v", hooks.outages)
	}
}

func TestRelay_drains_one_queue_and_leaves_others_alone(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	insertRows(t, st, "mine", 3)
	insertRows(t, st, "theirs", 2)
	rec := &fakepub.Publisher{}
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Queue: "mine", Publisher: rec})
	h.idle()
	if len(sentOf(rec)) != 3 || len(rowsOf(t, st, "theirs")) != 2 {
		t.Errorf("sent %d, left in other queue %d; want 3 and 2", len(sentOf(rec)), len(rowsOf(t, st, "theirs")))
	}
}

func TestRelay_Run_refuses_a_second_concurrent_run_and_stops_on_cancel(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: &fakepub.Publisher{}})
	h.idle()
	if err := h.relay.Run(context.Background()); !errors.Is(err, fallback.ErrAlreadyRunning) {
		t.Errorf("second Run: %v, want ErrAlreadyRunning", err)
	}
	h.stop()
}

func TestRelay_stopping_mid_send_releases_the_row_without_counting_an_attempt(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk)
	insertRows(t, st, "", 3)
	// The publisher blocks each send until its context ends.
	started := make(chan struct{}, 1)
	pub := &fakepub.Publisher{Func: func(_ string, msgs []*message.Message) error {
		started <- struct{}{}
		<-msgs[0].Context().Done()
		return msgs[0].Context().Err()
	}}
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: pub})
	<-started
	h.stop()
	for _, r := range rowsOf(t, st, "") {
		if r.Attempts != 0 || r.LeasedBy != "" {
			t.Errorf("row %+v after stop, want released with 0 attempts", r)
		}
	}
	if n := len(rowsOf(t, st, "")); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
}

func TestRelayConfig_Validate_names_bad_fields(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	pub := &fakepub.Publisher{}
	tests := []struct {
		name  string
		cfg   fallback.RelayConfig
		field string
	}{
		{"valid", fallback.RelayConfig{Store: st, Publisher: pub}, ""},
		{"no store", fallback.RelayConfig{Publisher: pub}, "Store"},
		{"no publisher", fallback.RelayConfig{Store: st}, "Publisher"},
		{"bad policy", fallback.RelayConfig{Store: st, Publisher: pub, Policy: policy.Policy{MaxAttempts: -1}}, "Policy"},
		{"negative poll", fallback.RelayConfig{Store: st, Publisher: pub, PollInterval: -1}, "PollInterval"},
		{"negative batch", fallback.RelayConfig{Store: st, Publisher: pub, BatchSize: -1}, "BatchSize"},
		{"poison into itself", fallback.RelayConfig{Store: st, Publisher: pub, Queue: "q", PoisonQueue: "q"}, "PoisonQueue"},
		{"bad poison topic", fallback.RelayConfig{Store: st, Publisher: pub, PoisonTopic: "a b"}, "PoisonTopic"},
		{"hook implementing nothing", fallback.RelayConfig{Store: st, Publisher: pub, Hooks: []any{"x"}}, "Hooks[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fallback.NewRelay(tt.cfg, nil)
			checkField(t, err, tt.field)
		})
	}
}

func TestRelay_releases_rows_it_cannot_send_before_its_lease_runs_out(t *testing.T) {
	clk := clocktest.NewFake(t0)
	st := newStore(t, sqliteBackend, nil, clk) // lease 30s: sends stop at 24s
	insertRows(t, st, "", 5)
	// Every send takes 10s on the fake clock.
	pub := &fakepub.Publisher{Func: func(string, []*message.Message) error {
		clk.Advance(10 * time.Second)
		return nil
	}}
	r, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: pub, Clock: clk}, nil)
	if err != nil {
		t.Fatalf("new relay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(sentOf(pub)) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := clk.BlockUntil(context.Background(), 1); err != nil {
		t.Fatalf("idle: %v", err)
	}
	cancel()
	<-done
	if got := len(sentOf(pub)); got != 3 {
		t.Fatalf("sent %d rows in the first batch, want 3 (the ones started before 4/5 of the lease)", got)
	}
	left := rowsOf(t, st, "")
	if len(left) != 2 {
		t.Fatalf("%d rows left, want 2", len(left))
	}
	for _, row := range left {
		if row.Attempts != 0 || row.LeasedBy != "" {
			t.Errorf("row %+v, want released with 0 attempts", row)
		}
	}
}

func TestRelay_keeps_running_while_the_store_is_down_and_counts_the_errors(t *testing.T) {
	clk := clocktest.NewFake(t0)
	db := sqlstoretest.Open(t, sqlstore.SQLite)
	st := newStore(t, sqliteBackend, db, clk)
	_ = db.Close()
	h := startRelay(t, clk, fallback.RelayConfig{Store: st, Publisher: &fakepub.Publisher{}, PollInterval: time.Second})
	h.tick(time.Second)
	h.tick(time.Second)
	s, err := h.relay.Stats(context.Background())
	if err == nil {
		t.Errorf("Stats on a closed database returned no error")
	}
	if s.StoreErrors != 3 {
		t.Errorf("StoreErrors %d after three polls, want 3", s.StoreErrors)
	}
	h.stop()
}
