package fallback_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/pkg/policy"
)

type storedHook struct {
	stored []fallback.StoredParams
	failed []fallback.StoreFailedParams
}

func (h *storedHook) OnFallbackStored(p fallback.StoredParams) { h.stored = append(h.stored, p) }
func (h *storedHook) OnFallbackStoreFailed(p fallback.StoreFailedParams) {
	h.failed = append(h.failed, p)
}

func newPublisher(t *testing.T, inner message.Publisher, st *sqlstore.Store, hooks ...any) *fallback.Publisher {
	t.Helper()
	p, err := fallback.NewPublisher(inner, fallback.Config{Store: st, Hooks: hooks}, nil)
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	return p
}

func TestPublisher_passes_messages_through_when_the_send_succeeds(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	rec := &fakepub.Publisher{}
	p := newPublisher(t, rec, st)
	if err := p.Publish("orders", message.NewMessage("u1", []byte("x"))); err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got := sentOf(rec); len(got) != 1 || got[0].UUID != "u1" {
		t.Errorf("inner got %v, want u1", got)
	}
	if rows, _ := st.List(context.Background(), sqlstore.Filter{AllQueues: true}); len(rows) != 0 {
		t.Errorf("%d rows stored for a successful send", len(rows))
	}
	if s := p.Stats(); s != (fallback.PublisherStats{Sent: 1}) {
		t.Errorf("stats %+v", s)
	}
}

func TestPublisher_stores_messages_when_the_send_fails_with_a_retryable_error(t *testing.T) {
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) {
			st := newStore(t, be, nil, nil)
			rec := &fakepub.Publisher{Err: errBrokerDown}
			hook := &storedHook{}
			p := newPublisher(t, rec, st, hook)
			m1 := message.NewMessage("uuid-1", []byte("one"))
			m1.Metadata.Set("tenant", "t1")
			m2 := message.NewMessage("uuid-2", []byte("two"))
			if err := p.Publish("orders", m1, m2); err != nil {
				t.Fatalf("publish: %v, want nil (stored)", err)
			}
			rows, err := st.List(context.Background(), sqlstore.Filter{})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if len(rows) != 2 {
				t.Fatalf("%d rows, want 2", len(rows))
			}
			r := rows[0]
			if r.UUID != "uuid-1" || r.Topic != "orders" || string(r.Payload) != "one" ||
				r.Metadata["tenant"] != "t1" || r.FirstError != errBrokerDown.Error() || r.Attempts != 0 {
				t.Errorf("row %+v", r)
			}
			if diff := cmp.Diff([]string{"uuid-1", "uuid-2"}, []string{hook.stored[0].UUID, hook.stored[1].UUID}); diff != "" {
				t.Errorf("stored hook (-want +got):\n%s", diff)
			}
			if !errors.Is(hook.stored[0].SendErr, errBrokerDown) {
				t.Errorf("hook SendErr %v", hook.stored[0].SendErr)
			}
			if s := p.Stats(); s.Stored != 2 {
				t.Errorf("stats %+v, want Stored 2", s)
			}
		})
	}
}

func TestPublisher_returns_permanent_and_context_errors_and_stores_nothing(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	tests := []struct {
		name string
		err  error
	}{
		{"permanent", policy.Permanent(errors.New("no permission"))},
		{"wrapped permanent", fmt.Errorf("send: %w", policy.Permanent(errors.New("too large")))},
		{"canceled", context.Canceled},
		{"deadline", fmt.Errorf("send: %w", context.DeadlineExceeded)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPublisher(t, &fakepub.Publisher{Err: tt.err}, st)
			err := p.Publish("orders", message.NewMessage("u", nil))
			if !errors.Is(err, tt.err) {
				t.Fatalf("publish: %v, want %v", err, tt.err)
			}
			if rows, _ := st.List(context.Background(), sqlstore.Filter{AllQueues: true}); len(rows) != 0 {
				t.Errorf("%d rows stored", len(rows))
			}
		})
	}
}

func TestPublisher_rejects_bad_input_before_sending(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	rec := &fakepub.Publisher{Err: errBrokerDown}
	p := newPublisher(t, rec, st)
	bad := message.NewMessage("u", nil)
	bad.Metadata.Set("k", "\x00")
	tests := []struct {
		name  string
		topic string
		msgs  []*message.Message
		want  error
	}{
		{"no messages", "orders", nil, sqlstore.ErrInvalidMessage},
		{"nil message", "orders", []*message.Message{nil}, sqlstore.ErrInvalidMessage},
		{"bad metadata", "orders", []*message.Message{bad}, sqlstore.ErrInvalidMetadata},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Publish(tt.topic, tt.msgs...)
			if !errors.Is(err, tt.want) || !policy.IsPermanent(err) {
				t.Fatalf("publish: %v, want permanent %v", err, tt.want)
			}
		})
	}
	if rec.Calls() != 0 {
		t.Errorf("inner publisher called %d times for bad input", rec.Calls())
	}
}

// The store's topic pattern is the store's business: a topic the broker
// accepts is sent while the broker is up, and only a failed send that must be
// stored meets the store's refusal, reported with both causes.
func TestPublisher_sends_a_topic_the_store_refuses_while_the_broker_is_up(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	var down atomic.Bool
	rec := &fakepub.Publisher{Func: func(string, []*message.Message) error {
		if down.Load() {
			return errBrokerDown
		}
		return nil
	}}
	hook := &storedHook{}
	p := newPublisher(t, rec, st, hook)
	const topic = "x; DROP TABLE y" // outside the store's [a-zA-Z0-9._%|:/-]
	if err := sqlstore.ValidateTopic(topic); !errors.Is(err, sqlstore.ErrInvalidTopic) {
		t.Fatalf("ValidateTopic(%q) = %v; the test needs a topic the store refuses", topic, err)
	}
	if err := p.Publish(topic, message.NewMessage("up", []byte("x"))); err != nil {
		t.Fatalf("Publish on a healthy broker = %v; want nil", err)
	}
	if got := sentOf(rec); len(got) != 1 || got[0].UUID != "up" || got[0].Topic != topic {
		t.Fatalf("inner got %+v; want message up on %q", got, topic)
	}

	down.Store(true)
	err := p.Publish(topic, message.NewMessage("down", []byte("x")))
	if !errors.Is(err, fallback.ErrNotStored) || !errors.Is(err, sqlstore.ErrInvalidTopic) || !errors.Is(err, errBrokerDown) {
		t.Fatalf("Publish with the broker down = %v; want ErrNotStored with the send error and ErrInvalidTopic", err)
	}
	if len(hook.failed) != 1 || hook.failed[0].UUID != "down" {
		t.Errorf("StoreFailedHook got %+v; want message down", hook.failed)
	}
	if rows, _ := st.List(context.Background(), sqlstore.Filter{AllQueues: true}); len(rows) != 0 {
		t.Errorf("%d rows stored; want 0", len(rows))
	}
	if got := p.Stats(); got.Sent != 1 || got.NotStored != 1 || got.Stored != 0 {
		t.Errorf("Stats = %+v; want Sent 1, NotStored 1", got)
	}
}

func TestPublisher_reports_both_causes_when_the_store_is_down_too(t *testing.T) {
	// A wrong DSN: the server refuses every connection.
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.Postgres}, nil)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	hook := &storedHook{}
	p := newPublisher(t, &fakepub.Publisher{Err: errBrokerDown}, st, hook)
	const n = 20
	accepted := 0
	for i := range n {
		err := p.Publish("orders", message.NewMessage(fmt.Sprint("u", i), nil))
		if err == nil {
			accepted++
			continue
		}
		var nse *fallback.NotStoredError
		if !errors.Is(err, fallback.ErrNotStored) || !errors.Is(err, errBrokerDown) ||
			!errors.Is(err, sqlstore.ErrStoreUnavailable) || !errors.As(err, &nse) {
			t.Fatalf("publish %d: %v, want ErrNotStored with both causes", i, err)
		}
	}
	if accepted != 0 {
		t.Errorf("%d messages reported accepted that were neither sent nor stored", accepted)
	}
	if len(hook.failed) != n || len(hook.stored) != 0 {
		t.Errorf("hooks: %d store failures, %d stored; want %d, 0", len(hook.failed), len(hook.stored), n)
	}
	if s := p.Stats(); s.NotStored != n {
		t.Errorf("stats %+v", s)
	}
}

func TestPublisher_close_closes_inner_and_rejects_later_publishes(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	p := newPublisher(t, &fakepub.Publisher{}, st)
	if err := p.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := p.Publish("orders", message.NewMessage("u", nil)); !errors.Is(err, fallback.ErrClosed) {
		t.Errorf("publish after close: %v, want ErrClosed", err)
	}
}

func TestConfig_Validate_names_bad_fields(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	tests := []struct {
		name  string
		cfg   fallback.Config
		field string
	}{
		{"valid", fallback.Config{Store: st}, ""},
		{"no store", fallback.Config{}, "Store"},
		{"bad queue", fallback.Config{Store: st, Queue: "a\x00"}, "Queue"},
		{"negative timeout", fallback.Config{Store: st, StoreTimeout: -1}, "StoreTimeout"},
		{"hook implementing nothing", fallback.Config{Store: st, Hooks: []any{42}}, "Hooks[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fallback.NewPublisher(&fakepub.Publisher{}, tt.cfg, nil)
			checkField(t, err, tt.field)
		})
	}
}

func checkField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, fallback.ErrInvalidConfig) || !strings.Contains(err.Error(), field) {
		t.Fatalf("got %v, want ErrInvalidConfig naming %s", err, field)
	}
}

type partialErr struct{ accepted []string }

func (e partialErr) Error() string      { return "partly sent" }
func (e partialErr) Accepted() []string { return e.accepted }

func TestPublisher_stores_only_the_messages_a_partial_failure_did_not_send(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	p := newPublisher(t, &fakepub.Publisher{Err: fmt.Errorf("send: %w", partialErr{accepted: []string{"a", "c"}})}, st)
	msgs := []*message.Message{message.NewMessage("a", nil), message.NewMessage("b", nil), message.NewMessage("c", nil)}
	if err := p.Publish("orders", msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	rows, err := st.List(context.Background(), sqlstore.Filter{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(rows) != 1 || rows[0].UUID != "b" {
		t.Errorf("stored %+v, want only b", rows)
	}
	if s := p.Stats(); s.Sent != 2 || s.Stored != 1 {
		t.Errorf("stats %+v, want 2 sent, 1 stored", s)
	}
}

// acceptedErr is a retryable send error that names what the backend took.
type acceptedErr struct {
	uuids []string
	idx   []int
}

func (e *acceptedErr) Error() string          { return "broker down after some messages" }
func (e *acceptedErr) Accepted() []string     { return e.uuids }
func (e *acceptedErr) AcceptedIndexes() []int { return e.idx }

// uuidsOnly hides AcceptedIndexes.
type uuidsOnly struct{ e *acceptedErr }

func (e uuidsOnly) Error() string      { return e.e.Error() }
func (e uuidsOnly) Accepted() []string { return e.e.Accepted() }

func TestPublisher_stores_a_message_whose_uuid_an_accepted_message_shares(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want []string // payloads stored
	}{
		{"by UUID", uuidsOnly{&acceptedErr{uuids: []string{"same"}}}, []string{"second", "third"}},
		{"by position", &acceptedErr{uuids: []string{"same"}, idx: []int{1}}, []string{"first", "third"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t, sqliteBackend, nil, nil)
			rec := &fakepub.Publisher{Err: tc.err}
			p := newPublisher(t, rec, st)
			m := []*message.Message{
				message.NewMessage("same", []byte("first")), message.NewMessage("same", []byte("second")),
				message.NewMessage("other", []byte("third")),
			}
			if err := p.Publish("orders", m...); err != nil {
				t.Fatalf("Publish = %v", err)
			}
			rows, err := st.List(context.Background(), sqlstore.Filter{AllQueues: true})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rows {
				got = append(got, string(r.Payload))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("stored payloads (-want +got):\n%s", diff)
			}
		})
	}
}
