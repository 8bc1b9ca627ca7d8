package journal_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/internal/transporttest"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/journal"
	"github.com/reliamq/reliamq/pkg/policy"
)

// The journal in front of every transport of the redelivery conformance
// suite (internal/transporttest; the RocketMQ ones in
// backends_rocketmq_test.go): every message Publish accepted reaches the
// subscriber, through a period in which the broker publisher fails.

const (
	backendMessages  = 200 // messages published through the journal
	backendProducers = 4   // goroutines publishing them, one message per call
	backendFailFirst = 20  // first sends of the broker publisher that fail
)

var errBackendDown = errors.New("broker publisher down")

// backendResult is what runBackend counted, by UUID.
type backendResult struct {
	sent       int // Publish returned nil
	delivered  int // UUIDs the subscriber received
	duplicated int // deliveries beyond the first of a UUID
	lost       int // sent UUIDs never delivered
}

// runBackend publishes backendMessages messages through a journal (an
// SQLite file) whose inner publisher is tr's publisher behind a fakepub
// that fails the first backendFailFirst sends, consumes them on tr and
// counts them by UUID. Lost must be 0; without a crash the relays send each
// row to the broker exactly once, and the journal ends empty.
func runBackend(t *testing.T, tr transporttest.Transport, timeout time.Duration) backendResult {
	t.Helper()
	group := sqlstoretest.UniqueName("journal")
	topic := sqlstoretest.UniqueName("journal")
	pub, sub := tr.NewPubSub(t, group)

	// Subscribe first: a gochannel drops what has no subscriber.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	var (
		mu        sync.Mutex
		delivered = map[string]int{}
	)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for msg := range ch {
			mu.Lock()
			delivered[msg.UUID]++
			mu.Unlock()
			msg.Ack()
		}
	}()
	stopConsuming := func() {
		cancel()
		_ = sub.Close()
		<-consumed
	}
	defer stopConsuming()

	failing := make([]error, backendFailFirst)
	for i := range failing {
		failing[i] = fmt.Errorf("send %d: %w", i+1, errBackendDown)
	}
	inner := &fakepub.Publisher{Script: failing, Func: func(topic string, msgs []*message.Message) error {
		return pub.Publish(topic, msgs...)
	}}
	st := newStore(t)
	cfg := journal.Config{Store: st, CloseTimeout: timeout, Relay: fallback.RelayConfig{
		Policy:        policy.Policy{Backoff: policy.Fixed(10 * time.Millisecond)},
		PollInterval:  20 * time.Millisecond,
		OutageBackoff: policy.Fixed(20 * time.Millisecond),
	}}
	if tr.SerialPublish {
		// One send at a time: the transport loses messages of concurrent
		// Publish calls (see transporttest.Transport.SerialPublish).
		cfg.Relays, cfg.Relay.Concurrency = 1, 1
	}
	j, err := journal.New(inner, cfg, nil)
	if err != nil {
		t.Fatalf("journal.New: %v", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = j.Close()
		}
	}()

	ids := make([]string, backendMessages)
	for i := range ids {
		ids[i] = watermill.NewUUID()
	}
	accepted := make([]bool, backendMessages)
	var wg sync.WaitGroup
	for p := range backendProducers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < backendMessages; i += backendProducers {
				// JSON: watermill-sql's schemas store payloads as JSON.
				msg := message.NewMessage(ids[i], []byte(fmt.Sprintf(`{"n":%d}`, i)))
				if err := j.Publish(topic, msg); err != nil {
					t.Errorf("publish %d: %v", i, err)
					continue
				}
				accepted[i] = true
			}
		}()
	}
	wg.Wait()

	var res backendResult
	for _, ok := range accepted {
		if ok {
			res.sent++
		}
	}
	allDelivered := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i, id := range ids {
			if accepted[i] && delivered[id] == 0 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(timeout)
	for !allDelivered() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	closed = true
	if err := j.Close(); err != nil {
		t.Errorf("journal Close: %v", err)
	}
	stopConsuming()

	mu.Lock()
	for i, id := range ids {
		n := delivered[id]
		switch {
		case n > 0:
			res.delivered++
			res.duplicated += n - 1
		case accepted[i]:
			res.lost++
		}
	}
	mu.Unlock()
	t.Logf("%s: sent %d, delivered %d, duplicated %d, lost %d; broker publisher: %d sends failed, then %d calls",
		tr.Name, res.sent, res.delivered, res.duplicated, res.lost, backendFailFirst, inner.Calls()-backendFailFirst)

	if res.sent != backendMessages {
		t.Errorf("Publish accepted %d of %d messages", res.sent, backendMessages)
	}
	if res.lost != 0 {
		t.Errorf("%d messages Publish accepted were never delivered", res.lost)
	}
	// The failing sends happened, and every row went to the broker exactly
	// once: no crash, so the journal sends nothing twice.
	if calls := inner.Calls(); calls <= backendFailFirst {
		t.Errorf("the broker publisher was called %d times; want the %d failing sends and more", calls, backendFailFirst)
	}
	sentOnce := inner.Count()
	for i, id := range ids {
		if accepted[i] && sentOnce[id] != 1 {
			t.Errorf("%s: the broker publisher accepted it %d times; want 1", id, sentOnce[id])
		}
	}
	if rows := rowsOf(t, st, journal.DefaultQueue); len(rows) != 0 {
		t.Errorf("%d rows left in the journal", len(rows))
	}
	if rows := rowsOf(t, st, journal.DefaultQueue+"/poison"); len(rows) != 0 {
		t.Errorf("%d rows poisoned", len(rows))
	}
	return res
}

// Every transport but RocketMQ: gochannel, SQLite (messages over
// gochannel), watermill-sql on PostgreSQL and MariaDB, RabbitMQ, NATS
// JetStream, Redis streams.
func TestJournal_loses_nothing_on_every_backend_through_a_failing_broker_publisher(t *testing.T) {
	transporttest.ForEach(t, transporttest.Watermill(), func(t *testing.T, tr transporttest.Transport) {
		runBackend(t, tr, time.Minute)
	})
}
