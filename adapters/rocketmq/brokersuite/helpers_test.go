//go:build !race

package brokersuite_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
)

// testLogger keeps client errors visible with go test -v.
func testLogger() watermill.LoggerAdapter {
	if testing.Verbose() {
		return watermill.NewStdLogger(false, false)
	}
	return watermill.NopLogger{}
}

// unique returns a topic or group name no other test, and no earlier run
// against the same cluster, uses.
func unique(prefix string) string { return sqlstoretest.UniqueName(prefix) }

func newPublisher(t testing.TB, tg *target, cfg rocketmq.PublisherConfig) *rocketmq.Publisher {
	t.Helper()
	cfg.NameServers = tg.nameServers
	p, err := rocketmq.NewPublisher(cfg, testLogger())
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// newSubscriber returns a subscriber with a group of its own unless cfg
// names one.
func newSubscriber(t testing.TB, tg *target, cfg rocketmq.SubscriberConfig) *rocketmq.Subscriber {
	t.Helper()
	cfg.NameServers = tg.nameServers
	if cfg.ConsumerGroup == "" {
		cfg.ConsumerGroup = unique("g")
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

// subscribe starts a subscription (which creates the topic and
// %RETRY%<group> on every broker) and ends it when the test ends.
func subscribe(t testing.TB, s *rocketmq.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	msgs, err := s.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", topic, err)
	}
	return msgs
}

// patience bounds the wait for a message the test expects: a bound on
// liveness, not on speed. Delivery normally takes milliseconds, but when a
// pull's answer never comes the v2.1.2 client sends the next pull only after
// its 30 s timeout and 3 s more; on 5.2.0 under CI load a message once missed
// a 30 s bound by 3 s.
const patience = 60 * time.Second

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

func newMessage(payload string, md message.Metadata) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), []byte(payload))
	for k, v := range md {
		m.Metadata.Set(k, v)
	}
	return m
}

// ledger counts messages by UUID: sent, delivered, duplicated, lost.
type ledger struct {
	mu        sync.Mutex
	sent      map[string]string // UUID -> label
	delivered map[string]int
}

func newLedger() *ledger { return &ledger{sent: map[string]string{}, delivered: map[string]int{}} }

func (l *ledger) markSent(uuid string) { l.markSentAs(uuid, uuid) }

// markSentAs records a sent message with a label that failure messages show.
func (l *ledger) markSentAs(uuid, label string) {
	l.mu.Lock()
	l.sent[uuid] = label
	l.mu.Unlock()
}

func (l *ledger) markDelivered(uuid string) {
	l.mu.Lock()
	l.delivered[uuid]++
	l.mu.Unlock()
}

type counts struct{ sent, delivered, duplicated, lost, unknown int }

func (c counts) String() string {
	return fmt.Sprintf("sent %d, delivered %d, duplicated %d, lost %d, never sent %d",
		c.sent, c.delivered, c.duplicated, c.lost, c.unknown)
}

func (l *ledger) counts() counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := counts{sent: len(l.sent)}
	for uuid := range l.sent {
		if n := l.delivered[uuid]; n > 0 {
			c.delivered++
			c.duplicated += n - 1
		} else {
			c.lost++
		}
	}
	for uuid := range l.delivered {
		if _, ok := l.sent[uuid]; !ok {
			c.unknown++
		}
	}
	return c
}

// lostLabels lists the labels of up to 10 lost messages, for failure
// messages.
func (l *ledger) lostLabels() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lost []string
	for uuid, label := range l.sent {
		if l.delivered[uuid] == 0 {
			lost = append(lost, label)
		}
	}
	sort.Strings(lost)
	if len(lost) > 10 {
		lost = append(lost[:10], "...")
	}
	return strings.Join(lost, " ")
}

// consumeInto acks every message of msgs into l until msgs closes (when the
// test's cleanup ends the subscription).
func consumeInto(msgs <-chan *message.Message, l *ledger) {
	go func() {
		for m := range msgs {
			l.markDelivered(m.UUID)
			m.Ack()
		}
	}()
}

// waitDelivered waits until every sent message was delivered, or fails
// after timeout with the counts.
func (l *ledger) waitDelivered(t testing.TB, timeout time.Duration) counts {
	t.Helper()
	c, ok := l.waitFor(timeout)
	if !ok {
		t.Fatalf("after %v: %v (lost: %s)", timeout, c, l.lostLabels())
	}
	return c
}

// waitFor waits until every sent message was delivered (true) or timeout
// passed (false).
func (l *ledger) waitFor(timeout time.Duration) (counts, bool) {
	deadline := time.Now().Add(timeout)
	for {
		c := l.counts()
		if c.lost == 0 {
			return c, true
		}
		if time.Now().After(deadline) {
			return c, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// userMetadata is m's metadata without the keys the subscriber adds.
func userMetadata(m *message.Message) map[string]string {
	out := map[string]string{}
	for k, v := range m.Metadata {
		if !strings.HasPrefix(k, "rocketmq_") && !strings.HasPrefix(k, "reliamq_") {
			out[k] = v
		}
	}
	return out
}
