//go:build !race

package rocketmq_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// fillOneQueue creates topic with a single queue and stores n messages in it,
// so that a consumer started afterwards gets them in one pull and, with
// ConsumeBatch n, in one consume call.
func fillOneQueue(t *testing.T, b *rocketmqtest.Broker, pub *rocketmq.Publisher, topic string, n int, l *ledger) []string {
	t.Helper()
	b.CreateTopic(rocketmqtest.TopicConfig{Name: topic, ReadQueues: 1, WriteQueues: 1})
	var uuids []string
	for i := 0; i < n; i++ {
		m := newMsg("m")
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
		l.markSent(m.UUID)
		uuids = append(uuids, m.UUID)
	}
	return uuids
}

func TestSubscriber_nacked_message_does_not_hold_up_the_rest_of_its_consume_call(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	l := newLedger()
	const n = 8
	fillOneQueue(t, b, pub, topic, n, l)
	// One consume goroutine: if a nacked message were handed out again
	// before the rest of its call, nothing else would ever be delivered.
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumeGoroutines: 1, ConsumeBatch: n})
	msgs := subscribe(t, sub, topic)

	poison := receive(t, msgs, 15*time.Second)
	l.markDelivered(poison.UUID)
	poison.Nack()
	healthy, poisonDeliveries := 0, 1
	for healthy < n-1 {
		m := receive(t, msgs, 10*time.Second)
		l.markDelivered(m.UUID)
		if m.UUID == poison.UUID {
			poisonDeliveries++
			if poisonDeliveries > 100 {
				t.Fatalf("the nacked message was delivered %d times while %d of the other %d waited", poisonDeliveries, n-1-healthy, n-1)
			}
			m.Nack() // still failing while the others are handled
			continue
		}
		healthy++
		m.Ack()
	}
	// Now the poison message is handled too.
	m := receive(t, msgs, 10*time.Second)
	if m.UUID != poison.UUID {
		t.Fatalf("got %s after the healthy ones, want the nacked %s again", m.UUID, poison.UUID)
	}
	l.markDelivered(m.UUID)
	m.Ack()
	sent, delivered, dup, lost := l.counts()
	t.Logf("sent %d delivered %d duplicated %d lost %d; the nacked message was delivered %d times", sent, delivered, dup, lost, poisonDeliveries+1)
	if delivered != n || lost != 0 || dup != poisonDeliveries {
		t.Fatalf("sent %d delivered %d duplicated %d lost %d, want every message once plus the %d nacked deliveries",
			sent, delivered, dup, lost, poisonDeliveries)
	}
	if n := len(b.Messages("%RETRY%" + sub.GroupFor(topic))); n != 0 {
		t.Errorf("%d messages went to the broker's retry topic", n)
	}
}

func TestSubscriber_broker_retry_sends_back_only_the_nacked_message(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{DelayScale: 0.001})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	l := newLedger()
	const n = 8
	fillOneQueue(t, b, pub, topic, n, l)
	// ConsumeBatch is ignored with BrokerRetry: a retry verdict for a call of
	// several messages would send all of them back.
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{BrokerRetry: true, ConsumeBatch: n})
	msgs := subscribe(t, sub, topic)

	var nacked string
	var retried *message.Message
	for retried == nil {
		m := receive(t, msgs, 15*time.Second)
		l.markDelivered(m.UUID)
		switch {
		case nacked == "":
			nacked = m.UUID
			m.Nack()
		case m.UUID == nacked:
			retried = m
			m.Ack()
		default:
			m.Ack()
		}
	}
	if got := retried.Metadata.Get(metadata.ReconsumeTimes); got != "1" {
		t.Errorf("the nacked message came back with reconsume times %s, want 1", got)
	}
	consumeAll(t, msgs, l, n, 10*time.Second)
	// Anything sent back with it would come back within the same delay.
	select {
	case m := <-msgs:
		l.markDelivered(m.UUID)
		m.Ack()
	case <-time.After(500 * time.Millisecond):
	}
	sent, delivered, dup, lost := l.counts()
	if delivered != n || lost != 0 || dup != 1 {
		t.Fatalf("sent %d delivered %d duplicated %d lost %d, want every message once plus the one broker redelivery", sent, delivered, dup, lost)
	}
	if got := len(b.Messages("%RETRY%" + sub.GroupFor(topic))); got != 1 {
		t.Errorf("%d messages sent back to the retry topic, want only the nacked one", got)
	}
}

func TestSubscriber_Close_part_way_through_a_consume_call_loses_nothing(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	group := "partway-" + topic
	l := newLedger()
	const n, batch, acked = 12, 8, 3
	fillOneQueue(t, b, pub, topic, n, l)
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group, ConsumeGoroutines: 1,
		ConsumeBatch: batch, CloseTimeout: 200 * time.Millisecond})
	msgs := subscribe(t, sub, topic)
	for i := 0; i < acked; i++ {
		m := receive(t, msgs, 15*time.Second)
		l.markDelivered(m.UUID)
		m.Ack()
	}
	held := receive(t, msgs, 10*time.Second) // never acked
	l.markDelivered(held.UUID)
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}

	next := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group})
	consumeAll(t, subscribe(t, next, topic), l, n, 20*time.Second)
	sent, delivered, dup, lost := l.counts()
	t.Logf("sent %d delivered %d duplicated %d lost %d", sent, delivered, dup, lost)
	if lost != 0 {
		t.Fatalf("lost %d of %d", lost, sent)
	}
	// The call's acked messages and the held one come again; nothing of a
	// call that never started does.
	if dup > acked+1 {
		t.Errorf("duplicated %d, want at most the %d messages the unfinished call handed out", dup, acked+1)
	}
}
