//go:build !race

package rocketmq_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

func TestMain(m *testing.M) {
	rocketmqtest.VerifyNoLeaks(m, leakOptions()...)
}

// leakOptions are what this package ignores beyond the client's leftovers
// (rocketmqtest.LeakOptions).
func leakOptions() []goleak.Option {
	return []goleak.Option{
		// Watermill's conformance harness merges several subscriptions with
		// goroutines that block forever on a duplicate delivered after the
		// test stopped reading (at-least-once allows duplicates).
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func2"),
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func3"),
	}
}

// testLogger keeps client errors visible when a test fails (go test -v).
func testLogger() watermill.LoggerAdapter {
	if testing.Verbose() {
		return watermill.NewStdLogger(false, false)
	}
	return watermill.NopLogger{}
}

func newBroker(t testing.TB, cfg rocketmqtest.Config) *rocketmqtest.Broker {
	t.Helper()
	if cfg.LongPollHold == 0 {
		cfg.LongPollHold = 200 * time.Millisecond
	}
	return rocketmqtest.NewTest(t, cfg)
}

func newPublisher(t testing.TB, b *rocketmqtest.Broker, cfg rocketmq.PublisherConfig) *rocketmq.Publisher {
	t.Helper()
	cfg.NameServers = []string{b.NameServerAddr()}
	p, err := rocketmq.NewPublisher(cfg, testLogger())
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func newSubscriber(t testing.TB, b *rocketmqtest.Broker, cfg rocketmq.SubscriberConfig) *rocketmq.Subscriber {
	t.Helper()
	cfg.NameServers = []string{b.NameServerAddr()}
	if cfg.ConsumerGroup == "" {
		cfg.ConsumerGroup = "g-" + watermill.NewShortUUID()
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 2 * time.Second
	}
	s, err := rocketmq.NewSubscriber(cfg, testLogger())
	if err != nil {
		t.Fatalf("NewSubscriber: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newTopic() string { return "t-" + watermill.NewShortUUID() }

// ledger counts messages by UUID: sent, delivered, duplicated, lost.
type ledger struct {
	mu        sync.Mutex
	sent      map[string]bool
	delivered map[string]int
}

func newLedger() *ledger {
	return &ledger{sent: map[string]bool{}, delivered: map[string]int{}}
}

func (l *ledger) markSent(uuid string) {
	l.mu.Lock()
	l.sent[uuid] = true
	l.mu.Unlock()
}

func (l *ledger) markDelivered(uuid string) {
	l.mu.Lock()
	l.delivered[uuid]++
	l.mu.Unlock()
}

// counts returns sent, delivered (distinct), duplicated (extra deliveries)
// and lost (sent, never delivered).
func (l *ledger) counts() (sent, delivered, duplicated, lost int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for uuid := range l.sent {
		if n := l.delivered[uuid]; n > 0 {
			delivered++
			duplicated += n - 1
		} else {
			lost++
		}
	}
	return len(l.sent), delivered, duplicated, lost
}

// consumeAll acks every message from msgs into l until want distinct sent
// messages were delivered or timeout passes.
func consumeAll(t testing.TB, msgs <-chan *message.Message, l *ledger, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if _, delivered, _, _ := l.counts(); delivered >= want {
			return
		}
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("channel closed early")
			}
			l.markDelivered(m.UUID)
			m.Ack()
		case <-deadline:
			sent, delivered, dup, lost := l.counts()
			t.Fatalf("timed out: sent %d delivered %d duplicated %d lost %d", sent, delivered, dup, lost)
		}
	}
}

func receive(t testing.TB, msgs <-chan *message.Message, timeout time.Duration) *message.Message {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("channel closed")
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("no message within %v", timeout)
	}
	return nil
}

func subscribe(t testing.TB, s *rocketmq.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	msgs, err := s.Subscribe(context.Background(), topic)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", topic, err)
	}
	return msgs
}
