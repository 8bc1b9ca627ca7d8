package fallback_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/middleware/fallback"
)

func TestOutbox_rolled_back_transaction_leaves_no_message_and_committed_one_is_delivered(t *testing.T) {
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) {
			st := newStore(t, be, nil, nil)
			db := st.DB()
			business := uniqueName("orders")
			if _, err := db.Exec("CREATE TABLE " + business + " (id INTEGER)"); err != nil {
				t.Fatalf("create business table: %v", err)
			}
			t.Cleanup(func() { _, _ = db.Exec("DROP TABLE " + business) })
			outbox, err := fallback.NewOutbox(fallback.OutboxConfig{Store: st})
			if err != nil {
				t.Fatalf("new outbox: %v", err)
			}
			ctx := context.Background()
			write := func(id int, uuid string, commit bool) {
				t.Helper()
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatalf("begin: %v", err)
				}
				if _, err := tx.ExecContext(ctx, "INSERT INTO "+business+" (id) VALUES (1)"); err != nil {
					t.Fatalf("business insert: %v", err)
				}
				// Half through WriteTx, half through the message.Publisher view.
				if id%2 == 0 {
					err = outbox.WriteTx(ctx, tx, "orders.created", message.NewMessage(uuid, []byte("order")))
				} else {
					err = outbox.TxPublisher(ctx, tx).Publish("orders.created", message.NewMessage(uuid, []byte("order")))
				}
				if err != nil {
					t.Fatalf("outbox write: %v", err)
				}
				if commit {
					err = tx.Commit()
				} else {
					err = tx.Rollback()
				}
				if err != nil {
					t.Fatalf("end tx: %v", err)
				}
			}
			write(0, "rolled-back-0", false)
			write(1, "rolled-back-1", false)
			write(2, "committed-2", true)
			write(3, "committed-3", true)

			pubSub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 10}, watermill.NopLogger{})
			defer pubSub.Close()
			msgs, err := pubSub.Subscribe(ctx, "orders.created")
			if err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			relay, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: pubSub, PollInterval: 10 * time.Millisecond}, nil)
			if err != nil {
				t.Fatalf("new relay: %v", err)
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- relay.Run(rctx) }()
			defer func() { cancel(); <-done }()

			got := map[string]bool{}
			timeout := time.After(10 * time.Second)
			for len(got) < 2 {
				select {
				case m := <-msgs:
					got[m.UUID] = true
					m.Ack()
				case <-timeout:
					t.Fatalf("delivered %v before timeout, want the 2 committed messages", got)
				}
			}
			select {
			case m := <-msgs:
				t.Errorf("unexpected extra delivery %s", m.UUID)
			case <-time.After(100 * time.Millisecond):
			}
			if !got["committed-2"] || !got["committed-3"] {
				t.Errorf("delivered %v, want committed-2 and committed-3", got)
			}
		})
	}
}

func TestOutbox_rejects_bad_input_with_typed_errors(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	outbox, err := fallback.NewOutbox(fallback.OutboxConfig{Store: st})
	if err != nil {
		t.Fatalf("new outbox: %v", err)
	}
	ctx := context.Background()
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer tx.Rollback()
	if err := outbox.WriteTx(ctx, tx, "x; DROP TABLE y", message.NewMessage("u", nil)); !errors.Is(err, sqlstore.ErrInvalidTopic) {
		t.Errorf("bad topic: %v, want ErrInvalidTopic", err)
	}
	if err := outbox.WriteTx(ctx, tx, "orders"); !errors.Is(err, sqlstore.ErrInvalidMessage) {
		t.Errorf("no messages: %v, want ErrInvalidMessage", err)
	}
	if _, err := fallback.NewOutbox(fallback.OutboxConfig{}); !errors.Is(err, fallback.ErrInvalidConfig) {
		t.Errorf("no store: %v, want ErrInvalidConfig", err)
	}
}
