package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

func TestPublisher_refuses_an_empty_uuid_and_neither_sends_nor_stores_it(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	rec := &fakepub.Publisher{Err: errBrokerDown}
	p := newPublisher(t, rec, st)
	err := p.Publish("orders", message.NewMessage("", []byte("x")))
	if !errors.Is(err, msgcheck.ErrEmptyUUID) || !errors.Is(err, sqlstore.ErrInvalidMessage) || !policy.IsPermanent(err) {
		t.Fatalf("Publish = %v; want a permanent msgcheck.ErrEmptyUUID", err)
	}
	if rec.Calls() != 0 {
		t.Errorf("inner called %d times", rec.Calls())
	}
	if rows, _ := st.List(context.Background(), sqlstore.Filter{AllQueues: true}); len(rows) != 0 {
		t.Errorf("%d rows stored", len(rows))
	}
}

// The README stack when retry.yaml is missing: retry.NewPublisher fails and
// returns a nil *retry.Publisher, which fallback.NewPublisher used to accept;
// Publish then returned nil and a worker dereferenced nil.
func TestNewPublisher_refuses_a_typed_nil_inner_publisher(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	retried, err := retry.NewPublisher(&fakepub.Publisher{}, retry.Config{}, nil) // no policy: fails
	if err == nil || retried != nil {
		t.Fatalf("retry.NewPublisher with no policy = %v, %v; want nil and an error", retried, err)
	}
	if _, err := fallback.NewPublisher(retried, fallback.Config{Store: st}, nil); !errors.Is(err, fallback.ErrInvalidConfig) {
		t.Fatalf("fallback.NewPublisher(typed nil) = %v; want ErrInvalidConfig", err)
	}
	if _, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: retried}, nil); !errors.Is(err, fallback.ErrInvalidConfig) {
		t.Fatalf("fallback.NewRelay(Publisher: typed nil) = %v; want ErrInvalidConfig", err)
	}
	if _, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: &fakepub.Publisher{}, PoisonPublisher: retried,
		PoisonTopic: "poison"}, nil); !errors.Is(err, fallback.ErrInvalidConfig) {
		t.Fatalf("fallback.NewRelay(PoisonPublisher: typed nil) = %v; want ErrInvalidConfig", err)
	}
}

// A publisher closed under the relay (shut down with the rest of the process)
// stops the relay; the rows are not the messages' fault and stay untouched.
func TestRelay_stops_when_publisher_is_closed(t *testing.T) {
	st := newStore(t, sqliteBackend, nil, nil)
	var sent []string
	var rows []sqlstore.Message
	for i := range 20 {
		m := message.NewMessage(fmt.Sprint("u", i), []byte("x"))
		sent = append(sent, m.UUID)
		rows = append(rows, sqlstore.FromMessage("", "orders", m))
	}
	if err := st.Insert(context.Background(), rows...); err != nil {
		t.Fatal(err)
	}
	closedPub, err := fallback.NewPublisher(&fakepub.Publisher{}, fallback.Config{Store: st}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := closedPub.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: closedPub, PollInterval: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = r.Run(ctx)
	if !errors.Is(err, fallback.ErrPublisherClosed) || !errors.Is(err, fallback.ErrClosed) || ctx.Err() != nil {
		t.Fatalf("Run = %v (context: %v); want ErrPublisherClosed and fallback.ErrClosed before the context ends", err, ctx.Err())
	}
	left, err := st.List(context.Background(), sqlstore.Filter{AllQueues: true})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, row := range left {
		if row.Queue != "" || row.Attempts != 0 {
			t.Errorf("row %s in queue %q with %d attempts; want the default queue and 0", row.UUID, row.Queue, row.Attempts)
		}
		count[row.UUID]++
	}
	if kept, lost, dupes := tally(sent, count); kept != len(sent) || lost != 0 || dupes != 0 {
		t.Errorf("kept %d, lost %d, duplicated %d of %d", kept, lost, dupes, len(sent))
	}
}
