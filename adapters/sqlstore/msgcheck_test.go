package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

func countRows(t *testing.T, st *sqlstore.Store) int {
	t.Helper()
	rows, err := st.List(context.Background(), sqlstore.Filter{AllQueues: true})
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

func TestPublisher_refuses_an_empty_uuid_and_stores_nothing(t *testing.T) {
	st := newStore(t, backends[0], sqlstore.Config{})
	pub, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	err = pub.Publish("orders", message.NewMessage("ok", nil), message.NewMessage("", nil))
	if !errors.Is(err, msgcheck.ErrEmptyUUID) || !errors.Is(err, sqlstore.ErrInvalidMessage) || !policy.IsPermanent(err) {
		t.Fatalf("Publish = %v; want a permanent ErrInvalidMessage and msgcheck.ErrEmptyUUID", err)
	}
	err = st.Insert(context.Background(), sqlstore.Message{Topic: "orders"})
	if !errors.Is(err, msgcheck.ErrEmptyUUID) {
		t.Fatalf("Insert = %v; want msgcheck.ErrEmptyUUID", err)
	}
	if n := countRows(t, st); n != 0 {
		t.Fatalf("%d rows stored", n)
	}
}

func TestInsert_refuses_metadata_a_broker_cannot_carry(t *testing.T) {
	st := newStore(t, backends[0], sqlstore.Config{})
	for _, v := range []string{"a\x00b", "a\x01b", "a\x02b", "\xff"} {
		err := st.Insert(context.Background(), sqlstore.Message{Topic: "orders", UUID: "u", Metadata: map[string]string{"k": v}})
		if !errors.Is(err, sqlstore.ErrInvalidMetadata) || !errors.Is(err, msgcheck.ErrInvalidMetadata) {
			t.Errorf("Insert with metadata %q = %v; want ErrInvalidMetadata", v, err)
		}
	}
	if err := st.Insert(context.Background(), sqlstore.Message{Topic: "orders", UUID: "u",
		Metadata: map[string]string{"k": "line one\nline two\ttab"}}); err != nil {
		t.Errorf("Insert with a newline and a tab in metadata = %v; want nil", err)
	}
}

// refuser is a msgcheck.Checker that refuses every call.
type refuser struct{ calls int }

var errRefused = errors.New("the broker would refuse this")

func (r *refuser) Check(string, ...*message.Message) error { r.calls++; return errRefused }

func TestPublisher_refuses_what_its_checker_refuses_and_stores_nothing(t *testing.T) {
	st := newStore(t, backends[0], sqlstore.Config{})
	chk := &refuser{}
	pub, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: st, Checker: chk})
	if err != nil {
		t.Fatal(err)
	}
	err = pub.Publish("orders", message.NewMessage("u1", nil))
	if !errors.Is(err, errRefused) || !policy.IsPermanent(err) || chk.calls != 1 {
		t.Fatalf("Publish = %v after %d checks; want the checker's error, permanent, after 1", err, chk.calls)
	}
	if n := countRows(t, st); n != 0 {
		t.Fatalf("%d rows stored", n)
	}
}

func TestConstructors_refuse_typed_nil_values(t *testing.T) {
	st := newStore(t, backends[0], sqlstore.Config{})
	var chk *refuser
	if _, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: st, Checker: chk}); !errors.Is(err, sqlstore.ErrInvalidConfig) {
		t.Errorf("NewPublisher(Checker: typed nil) = %v; want ErrInvalidConfig", err)
	}
	var clk *clocktest.Fake
	if _, err := sqlstore.New(sqlstore.Config{DB: st.DB(), Dialect: st.Dialect(), Table: st.Table(), Clock: clk}, nil); !errors.Is(err, sqlstore.ErrInvalidConfig) {
		t.Errorf("New(Clock: typed nil) = %v; want ErrInvalidConfig", err)
	}
}
