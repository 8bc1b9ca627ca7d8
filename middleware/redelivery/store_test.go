package redelivery_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

func newSQLiteStore(t *testing.T, clk clock.Clock) *sqlstore.Store {
	t.Helper()
	return sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{Table: "waiting", Clock: clk})
}

func TestDurable_parks_the_message_until_due_then_publishes_it_and_deletes_the_row(t *testing.T) {
	fake := clocktest.NewFake(time.Time{})
	st := newSQLiteStore(t, fake)
	pub := &fakepub.Publisher{Script: []error{errBrokerDown}}
	hooks := newHookRecorder()
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "billing", Handler: "charge", Publisher: pub, Clock: fake, Hooks: []any{hooks},
		Scheduler: redelivery.NewDurable(redelivery.DurableConfig{Store: st, PollInterval: time.Second, PublishRetryInterval: 5 * time.Second}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	msg := message.NewMessage("m1", []byte("p"))
	msg.Metadata.Set("tenant", "acme")
	if _, err := r.Middleware(func(*message.Message) ([]*message.Message, error) {
		return nil, redelivery.RetryAfter(10 * time.Second)
	})(msg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if s, err := st.Stats(ctx, "billing/charge"); err != nil || s.Backlog != 1 || s.Due != 0 {
		t.Fatalf("store stats %+v %v, want one row not yet due in queue billing/charge", s, err)
	}
	r.Start()
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := fake.BlockUntil(waitCtx, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(10 * time.Second) // due: the first publish fails and the row is rescheduled
	if ev := recv(t, hooks.redelivered, "redelivered event"); !errors.Is(ev.Err, errBrokerDown) {
		t.Fatalf("event %+v, want the publish error", ev)
	}
	for _, step := range []time.Duration{time.Second, 4 * time.Second} {
		if err := fake.BlockUntil(waitCtx, 1); err != nil {
			t.Fatal(err)
		}
		fake.Advance(step)
	}
	if !pub.WaitAccepted(1, 10*time.Second) {
		t.Fatal("no publish after the retry interval")
	}
	if ev := recv(t, hooks.redelivered, "redelivered event"); ev.Err != nil || ev.Retry != 1 || ev.MessageUUID != "m1" {
		t.Fatalf("event %+v", ev)
	}
	_ = r.Close() // waits for the poller: the delete is done
	if s, err := st.Stats(ctx, "billing/charge"); err != nil || s.Backlog != 0 {
		t.Fatalf("store stats %+v %v, want the row deleted", s, err)
	}
	rec := pub.Accepted()[0]
	got := rec.Msg
	if rec.Topic != "reliamq_retry_billing_charge" || got.UUID != "m1" || string(got.Payload) != "p" ||
		got.Metadata.Get("tenant") != "acme" || got.Metadata.Get(metadata.ReconsumeTimes) != "1" {
		t.Fatalf("published %s to %s: %v", got.UUID, rec.Topic, got.Metadata)
	}
}

// A message the store cannot hold must not be nacked forever: it is
// dead-lettered with the store's error.
func TestDurable_dead_letters_a_message_the_store_rejects(t *testing.T) {
	dlq := &fakepub.Publisher{}
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "g", Handler: "h", Scheduler: redelivery.NewDurable(redelivery.DurableConfig{Store: newSQLiteStore(t, nil)}),
		Publisher: &fakepub.Publisher{}, DeadLetterPublisher: dlq,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	msg := message.NewMessage("m", nil)
	msg.Metadata.Set("bad", "nul\x00byte")
	if _, err := r.Middleware(func(*message.Message) ([]*message.Message, error) {
		return nil, errors.New("down")
	})(msg); err != nil {
		t.Fatalf("err = %v, want nil (dead-lettered)", err)
	}
	if got := dlq.Accepted(); len(got) != 1 || got[0].Msg.Metadata.Get(metadata.DeadLetterReason) != redelivery.ReasonPermanent {
		t.Fatalf("dead letters %v", got)
	}
}

var errRefused = errors.New("retry topic refuses the message")

// The durable poller is the fallback relay: a due message the retry topic's
// publisher refuses permanently is not retried forever but moved, with its
// UUID, payload and metadata, to the poison queue "<group>/<handler>/poison".
func TestDurable_moves_a_message_the_retry_topic_refuses_permanently_to_the_poison_queue(t *testing.T) {
	st := newSQLiteStore(t, nil)
	pub := &fakepub.Publisher{Err: policy.Permanent(errRefused)}
	hooks := newHookRecorder()
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "billing", Handler: "charge", Publisher: pub, Hooks: []any{hooks},
		Scheduler: redelivery.NewDurable(redelivery.DurableConfig{Store: st, PollInterval: 5 * time.Millisecond, PublishRetryInterval: time.Hour}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	msg := message.NewMessage("m1", []byte("p"))
	msg.Metadata.Set("tenant", "acme")
	if _, err := r.Middleware(func(*message.Message) ([]*message.Message, error) {
		return nil, redelivery.RetryAfter(time.Millisecond)
	})(msg); err != nil {
		t.Fatal(err)
	}
	r.Start()
	if ev := recv(t, hooks.redelivered, "redelivered event"); !errors.Is(ev.Err, errRefused) || ev.MessageUUID != "m1" {
		t.Fatalf("event %+v, want the refusal of m1", ev)
	}
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	var poisoned []sqlstore.Message
	for time.Now().Before(deadline) {
		if poisoned, err = st.List(ctx, sqlstore.Filter{Queue: "billing/charge/poison"}); err != nil {
			t.Fatal(err)
		}
		if len(poisoned) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(poisoned) != 1 {
		t.Fatalf("%d rows in the poison queue, want 1", len(poisoned))
	}
	got := poisoned[0]
	if got.UUID != "m1" || string(got.Payload) != "p" || got.Metadata["tenant"] != "acme" ||
		got.Metadata[metadata.DeadLetterReason] != "permanent" {
		t.Fatalf("poisoned row %+v", got)
	}
	_ = r.Close()
	if s, err := st.Stats(ctx, "billing/charge"); err != nil || s.Backlog != 0 {
		t.Fatalf("store stats %+v %v, want the row gone from billing/charge", s, err)
	}
	if n := pub.Calls(); n != 1 {
		t.Fatalf("publisher called %d times, want 1 (a permanent refusal is not retried)", n)
	}
}
