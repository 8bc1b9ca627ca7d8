package journal_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/journal"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

var errBrokerDown = errors.New("broker down")

func TestPublish_returns_after_the_commit_and_the_relay_delivers_and_deletes_the_rows(t *testing.T) {
	st := newStore(t)
	// The broker is down at first: a row must be in the journal once
	// Publish returned, whatever happens to the send.
	var up atomic.Bool
	inner := &fakepub.Publisher{Func: func(string, []*message.Message) error {
		if !up.Load() {
			return errBrokerDown
		}
		return nil
	}}
	j := newJournal(t, inner, journal.Config{Store: st, Relay: fallback.RelayConfig{
		OutageBackoff: policy.Fixed(20 * time.Millisecond), Policy: policy.Policy{Backoff: policy.Fixed(10 * time.Millisecond)}}})
	msg := message.NewMessage(watermill.NewUUID(), []byte("payload"))
	msg.Metadata.Set("k", "v")
	if err := j.Publish("orders", msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
	rows := rowsOf(t, st, journal.DefaultQueue)
	if len(rows) != 1 || rows[0].UUID != msg.UUID || rows[0].Topic != "orders" {
		t.Fatalf("journal rows after Publish: %+v", rows)
	}
	up.Store(true)
	waitFor(t, "the relay to send the row", func() bool { return len(inner.Accepted()) == 1 })
	got := inner.Accepted()[0]
	if got.Topic != "orders" || got.Msg.UUID != msg.UUID || string(got.Msg.Payload) != "payload" || got.Msg.Metadata.Get("k") != "v" {
		t.Fatalf("sent %s %s %q %v", got.Topic, got.Msg.UUID, got.Msg.Payload, got.Msg.Metadata)
	}
	waitFor(t, "the sent row to be deleted", func() bool { return len(rowsOf(t, st, journal.DefaultQueue)) == 0 })
	s, err := j.Stats(context.Background())
	if err != nil || s.Journaled != 1 || s.Relay.Sent != 1 || s.Relay.Backlog != 0 {
		t.Fatalf("stats %+v, %v", s, err)
	}
}

func TestPublish_concurrent_calls_share_commits(t *testing.T) {
	st := &gatedStore{Store: newStore(t), gate: make(chan struct{})}
	inner := &fakepub.Publisher{}
	j := newJournal(t, inner, journal.Config{Store: st})
	const callers = 20
	errs := make(chan error, callers)
	publish := func() { errs <- j.Publish("orders", message.NewMessage(watermill.NewUUID(), nil)) }
	go publish()
	waitFor(t, "the first commit to start", func() bool { return len(st.insertCalls()) == 1 })
	var started sync.WaitGroup
	for range callers - 1 {
		started.Add(1)
		go func() { started.Done(); publish() }()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond) // the callers queue behind the held commit
	close(st.gate)
	for range callers {
		if err := <-errs; err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	calls := st.insertCalls()
	if len(calls) >= callers {
		t.Fatalf("%d commits for %d calls: no call shared a commit (%v)", len(calls), callers, calls)
	}
	if !inner.WaitAccepted(callers, 10*time.Second) {
		t.Fatalf("delivered %d of %d", len(inner.Accepted()), callers)
	}
	s, _ := j.Stats(context.Background())
	t.Logf("%d calls in %d commits (%d stats commits)", callers, len(calls), s.Commits)
}

func TestPublish_MaxBatch_bounds_a_commit_and_a_larger_call_is_written_alone(t *testing.T) {
	st := &gatedStore{Store: newStore(t), gate: make(chan struct{})}
	inner := &fakepub.Publisher{}
	j := newJournal(t, inner, journal.Config{Store: st, MaxBatch: 3})
	msgs := func(n int) []*message.Message {
		out := make([]*message.Message, n)
		for i := range out {
			out[i] = message.NewMessage(watermill.NewUUID(), nil)
		}
		return out
	}
	errs := make(chan error, 8)
	go func() { errs <- j.Publish("orders", msgs(1)...) }()
	waitFor(t, "the first commit to start", func() bool { return len(st.insertCalls()) == 1 })
	sizes := []int{2, 2, 4, 1, 1, 1, 1} // wait behind the held commit
	var large []*message.Message
	for _, n := range sizes {
		m := msgs(n)
		if n == 4 {
			large = m
		}
		go func() { errs <- j.Publish("orders", m...) }()
	}
	time.Sleep(50 * time.Millisecond)
	close(st.gate)
	for range len(sizes) + 1 {
		if err := <-errs; err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	calls, total := st.insertCalls(), 0
	for _, c := range calls {
		total += len(c)
		if len(c) > 3 && (len(c) != 4 || c[0] != large[0].UUID) {
			t.Errorf("a commit of %d messages; MaxBatch 3 (the 4-message call alone may exceed it): %v", len(c), calls)
		}
	}
	if total != 13 {
		t.Fatalf("committed %d messages, want 13: %v", total, calls)
	}
	if len(calls) >= 1+len(sizes) {
		t.Fatalf("%d commits for %d calls: none shared (%v)", len(calls), 1+len(sizes), calls)
	}
	if !inner.WaitAccepted(13, 10*time.Second) {
		t.Fatalf("delivered %d of 13", len(inner.Accepted()))
	}
}

func TestPublish_a_call_the_store_refuses_does_not_fail_the_calls_sharing_its_commit(t *testing.T) {
	bad := watermill.NewUUID()
	st := &gatedStore{Store: newStore(t), gate: make(chan struct{}), refuse: map[string]bool{bad: true}}
	inner := &fakepub.Publisher{}
	j := newJournal(t, inner, journal.Config{Store: st})
	errs := map[string]chan error{}
	publish := func(id string) {
		ch := make(chan error, 1)
		errs[id] = ch
		go func() { ch <- j.Publish("orders", message.NewMessage(id, nil)) }()
	}
	publish(watermill.NewUUID())
	waitFor(t, "the first commit to start", func() bool { return len(st.insertCalls()) == 1 })
	good := watermill.NewUUID()
	publish(bad)
	publish(good)
	time.Sleep(50 * time.Millisecond)
	close(st.gate)
	for id, ch := range errs {
		err := <-ch
		switch {
		case id == bad && (!errors.Is(err, queue.ErrInvalidMessage) || !policy.IsPermanent(err)):
			t.Errorf("the refused call got %v; want a permanent queue.ErrInvalidMessage", err)
		case id != bad && err != nil:
			t.Errorf("call %s: %v", id, err)
		}
	}
	if !inner.WaitAccepted(2, 10*time.Second) {
		t.Fatalf("delivered %v", inner.UUIDs())
	}
	time.Sleep(20 * time.Millisecond)
	if c := inner.Count(); c[bad] != 0 || c[good] != 1 || len(c) != 2 {
		t.Fatalf("delivered %v", c)
	}
}

type refuseTopic string

func (r refuseTopic) Check(topic string, _ ...*message.Message) error {
	if topic == string(r) {
		return errors.New("the broker refuses topic " + topic)
	}
	return nil
}

func TestPublish_refuses_bad_input_at_once_and_stores_nothing(t *testing.T) {
	st := newStore(t)
	inner := &fakepub.Publisher{}
	j := newJournal(t, inner, journal.Config{Store: st, Checker: refuseTopic("forbidden")})
	cases := []struct {
		name  string
		topic string
		msgs  []*message.Message
		want  error
	}{
		{"no messages", "orders", nil, queue.ErrInvalidMessage},
		{"nil message", "orders", []*message.Message{nil}, msgcheck.ErrNilMessage},
		{"empty uuid", "orders", []*message.Message{message.NewMessage("", nil)}, msgcheck.ErrEmptyUUID},
		{"metadata with NUL", "orders", []*message.Message{func() *message.Message {
			m := message.NewMessage(watermill.NewUUID(), nil)
			m.Metadata.Set("k", "a\x00b")
			return m
		}()}, queue.ErrInvalidMetadata},
		{"topic the store cannot keep", "a b", []*message.Message{message.NewMessage(watermill.NewUUID(), nil)}, queue.ErrInvalidTopic},
		{"topic the checker refuses", "forbidden", []*message.Message{message.NewMessage(watermill.NewUUID(), nil)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := j.Publish(tc.topic, tc.msgs...)
			if err == nil || !policy.IsPermanent(err) {
				t.Fatalf("got %v, want a permanent error", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if rows := rowsOf(t, st, journal.DefaultQueue); len(rows) != 0 {
		t.Fatalf("%d rows stored for bad input", len(rows))
	}
	if s, _ := j.Stats(context.Background()); s.Rejected != 5 || s.Journaled != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPublish_reports_a_failed_commit_with_ErrNotJournaled(t *testing.T) {
	st := newStore(t)
	j := newJournal(t, &fakepub.Publisher{}, journal.Config{Store: st, StoreTimeout: time.Second, CloseTimeout: 50 * time.Millisecond})
	if err := st.DB().Close(); err != nil {
		t.Fatal(err)
	}
	err := j.Publish("orders", message.NewMessage(watermill.NewUUID(), nil))
	if !errors.Is(err, journal.ErrNotJournaled) || policy.IsPermanent(err) {
		t.Fatalf("got %v, want a retryable ErrNotJournaled", err)
	}
	if s, _ := j.Stats(context.Background()); s.Failed != 1 || s.Journaled != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestClose_waits_for_the_journal_to_empty_then_closes_the_inner_publisher(t *testing.T) {
	st := newStore(t)
	inner := &fakepub.Publisher{Func: func(string, []*message.Message) error {
		time.Sleep(time.Millisecond)
		return nil
	}}
	j, err := journal.New(inner, journal.Config{Store: st}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := range n {
		if err := j.Publish("orders", message.NewMessage(fmt.Sprint("m-", i), nil)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if got := len(inner.Accepted()); got != n {
		t.Fatalf("Close returned with %d of %d sent", got, n)
	}
	if !inner.Closed() {
		t.Fatal("the inner publisher was not closed")
	}
	if rows := rowsOf(t, st, journal.DefaultQueue); len(rows) != 0 {
		t.Fatalf("%d rows left", len(rows))
	}
	err = j.Publish("orders", message.NewMessage(watermill.NewUUID(), nil))
	if !errors.Is(err, journal.ErrClosed) || !errors.Is(err, policy.ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

// A journal closed while the broker is down keeps what it could not send,
// and the next journal on the same file sends it: nothing accepted is lost
// across a restart.
func TestClose_with_the_broker_down_keeps_the_rows_for_the_next_start(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	st := openJournal(t, path)
	down := &fakepub.Publisher{Err: errBrokerDown}
	j, err := journal.New(down, journal.Config{Store: st, CloseTimeout: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 50 {
		m := message.NewMessage(watermill.NewUUID(), nil)
		ids = append(ids, m.UUID)
		if err := j.Publish("orders", m); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if rows := rowsOf(t, st, journal.DefaultQueue); len(rows) != len(ids) {
		t.Fatalf("%d rows kept, want %d", len(rows), len(ids))
	}
	up := &fakepub.Publisher{}
	newJournal(t, up, journal.Config{Store: openJournal(t, path)})
	if !up.WaitAccepted(len(ids), 10*time.Second) {
		t.Fatalf("the restarted journal sent %d of %d", len(up.Accepted()), len(ids))
	}
	count := up.Count()
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("%s delivered %d times", id, count[id])
		}
	}
}

// Rows a dead process held leased would wait out the store's lease (30 s by
// default), and rows that failed a send their backoff; the next start of the
// same journal makes them due at once.
func TestNew_makes_the_rows_a_dead_run_left_leased_or_waiting_due_at_once(t *testing.T) {
	st := newStore(t)
	const owner = "journal:test-host:journal"
	var ids []string
	for i := range 6 {
		m := message.NewMessage(watermill.NewUUID(), nil)
		ids = append(ids, m.UUID)
		row := queue.FromMessage(journal.DefaultQueue, "orders", m)
		if i == 5 {
			row.NextAttemptAt = time.Now().Add(time.Hour) // a retry waiting for its backoff
		}
		if err := st.Insert(context.Background(), row); err != nil {
			t.Fatal(err)
		}
	}
	// The dead run's relay claimed them (under the same owner) and died.
	claimed, err := st.Claim(context.Background(), queue.ClaimRequest{Queue: journal.DefaultQueue, Owner: owner, Limit: 3})
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %d rows, %v", len(claimed), err)
	}
	// Another process's lease on the same queue is left alone.
	other, err := st.Claim(context.Background(), queue.ClaimRequest{Queue: journal.DefaultQueue, Owner: "someone-else", Limit: 1})
	if err != nil || len(other) != 1 {
		t.Fatalf("claim: %d rows, %v", len(other), err)
	}
	inner := &fakepub.Publisher{}
	newJournal(t, inner, journal.Config{Store: st, Owner: owner, CloseTimeout: 50 * time.Millisecond})
	if !inner.WaitAccepted(5, 10*time.Second) {
		t.Fatalf("sent %v; want the 3 released rows, the unleased one and the waiting one", inner.UUIDs())
	}
	time.Sleep(50 * time.Millisecond)
	c := inner.Count()
	for _, id := range ids {
		want := 1
		if id == other[0].UUID {
			want = 0 // another owner's lease is left alone
		}
		if c[id] != want {
			t.Errorf("%s sent %d times, want %d", id, c[id], want)
		}
	}
}

func TestNew_validates_the_config(t *testing.T) {
	st := newStore(t)
	cases := []struct {
		name  string
		inner message.Publisher
		cfg   journal.Config
		field string
	}{
		{"nil inner", nil, journal.Config{Store: st}, "inner publisher"},
		{"no store", fakepub.Nop, journal.Config{}, "Store"},
		{"bad queue", fakepub.Nop, journal.Config{Store: st, Queue: "a\nb"}, "Queue"},
		{"negative batch", fakepub.Nop, journal.Config{Store: st, MaxBatch: -1}, "MaxBatch"},
		{"negative relays", fakepub.Nop, journal.Config{Store: st, Relays: -1}, "Relays"},
		{"negative timeout", fakepub.Nop, journal.Config{Store: st, StoreTimeout: -time.Second}, "StoreTimeout"},
		{"relay store set", fakepub.Nop, journal.Config{Store: st, Relay: fallback.RelayConfig{Store: st}}, "Relay.Store"},
		{"relay publisher set", fakepub.Nop, journal.Config{Store: st, Relay: fallback.RelayConfig{Publisher: fakepub.Nop}}, "Relay.Publisher"},
		{"bad relay field", fakepub.Nop, journal.Config{Store: st, Relay: fallback.RelayConfig{BatchSize: -1}}, "BatchSize"},
		{"hook of nothing", fakepub.Nop, journal.Config{Store: st, Hooks: []any{42}}, "Hooks[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, err := journal.New(tc.inner, tc.cfg, nil)
			if err == nil {
				_ = j.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, journal.ErrInvalidConfig) || !containsField(err, tc.field) {
				t.Fatalf("got %v; want ErrInvalidConfig naming %s", err, tc.field)
			}
		})
	}
	j, err := journal.New(fakepub.Nop, journal.Config{Store: st}, nil)
	if err != nil {
		t.Fatalf("the minimal config: %v", err)
	}
	_ = j.Close()
}

func containsField(err error, field string) bool {
	return err != nil && len(field) > 0 && contains(err.Error(), field+":")
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

type commitHook struct {
	mu      sync.Mutex
	commits []journal.CommitParams
}

func (h *commitHook) OnJournalCommit(p journal.CommitParams) {
	h.mu.Lock()
	h.commits = append(h.commits, p)
	h.mu.Unlock()
}

func TestCommitHook_sees_every_commit(t *testing.T) {
	h := &commitHook{}
	inner := &fakepub.Publisher{}
	j := newJournal(t, inner, journal.Config{Store: newStore(t), Hooks: []any{h}})
	for range 3 {
		if err := j.Publish("orders", message.NewMessage(watermill.NewUUID(), nil), message.NewMessage(watermill.NewUUID(), nil)); err != nil {
			t.Fatal(err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	total := 0
	for _, c := range h.commits {
		if c.Err != nil || c.Failed != 0 || c.Calls < 1 {
			t.Errorf("commit %+v", c)
		}
		total += c.Messages
	}
	if total != 6 {
		t.Fatalf("hooks saw %d messages in %d commits, want 6", total, len(h.commits))
	}
}

// With StoreTimeout left zero an SQLite commit runs without a context
// deadline; SQLite's busy timeout (5 s with sqlite.Open) still bounds its
// wait for a write lock another connection holds: the call fails with
// ErrNotJournaled instead of waiting for ever, and nothing is stored.
func TestPublish_on_SQLite_without_StoreTimeout_is_bounded_by_the_busy_timeout(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out SQLite's 5 s busy timeout")
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	st := openJournal(t, path)
	j := newJournal(t, &fakepub.Publisher{}, journal.Config{Store: st, CloseTimeout: 50 * time.Millisecond})
	other, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("taking the write lock: %v", err)
	}
	err = j.Publish("orders", message.NewMessage(watermill.NewUUID(), nil))
	if !errors.Is(err, journal.ErrNotJournaled) {
		t.Fatalf("got %v, want ErrNotJournaled once the busy timeout ran out", err)
	}
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if rows := rowsOf(t, st, journal.DefaultQueue); len(rows) != 0 {
		t.Fatalf("%d rows stored by a failed commit", len(rows))
	}
}
