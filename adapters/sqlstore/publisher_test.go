package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/sqlstore"
)

func TestPublisher_stores_messages_with_uuid_payload_and_metadata(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newStore(t, be, sqlstore.Config{})
		pub, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: st, Queue: "leftovers"})
		if err != nil {
			t.Fatalf("new publisher: %v", err)
		}
		m1 := message.NewMessage("uuid-1", []byte("one"))
		m1.Metadata.Set("k", "v")
		m2 := message.NewMessage("uuid-2", []byte("two"))
		if err := pub.Publish("orders", m1, m2); err != nil {
			t.Fatalf("publish: %v", err)
		}
		rows, err := st.List(context.Background(), sqlstore.Filter{Queue: "leftovers"})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(rows) != 2 {
			t.Fatalf("%d rows, want 2", len(rows))
		}
		got := rows[0].ToMessage()
		if got.UUID != "uuid-1" || string(got.Payload) != "one" || got.Metadata.Get("k") != "v" || rows[0].Topic != "orders" {
			t.Errorf("row 0 came back as %s %q %v on %s", got.UUID, got.Payload, got.Metadata, rows[0].Topic)
		}
		if diff := cmp.Diff([]string{"uuid-1", "uuid-2"}, uuids(rows)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if err := pub.Publish("bad topic", message.NewMessage("u", nil)); !errors.Is(err, sqlstore.ErrInvalidTopic) {
			t.Errorf("bad topic: %v, want ErrInvalidTopic", err)
		}
		if err := pub.Publish("orders", nil); !errors.Is(err, sqlstore.ErrInvalidMessage) {
			t.Errorf("nil message: %v, want ErrInvalidMessage", err)
		}
		_ = pub.Close()
		if err := pub.Publish("orders", message.NewMessage("u3", nil)); !errors.Is(err, sqlstore.ErrClosed) {
			t.Errorf("after close: %v, want ErrClosed", err)
		}
	})
}

func TestNewPublisher_requires_a_store(t *testing.T) {
	if _, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{}); !errors.Is(err, sqlstore.ErrInvalidConfig) {
		t.Errorf("NewPublisher without Store: %v, want ErrInvalidConfig", err)
	}
}
