//go:build !race

package rocketmq_test

import (
	"fmt"
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
	return publishEach(t, pub, topic, n, l)
}

// publishEach publishes n messages to topic one by one, marking them sent in
// l, and returns their UUIDs.
func publishEach(t *testing.T, pub *rocketmq.Publisher, topic string, n int, l *ledger) []string {
	t.Helper()
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

func TestSubscriber_hands_out_at_most_ConsumeGoroutines_unacked_messages_and_never_stalls(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	l := newLedger()
	const n, bound = 120, 3
	publishEach(t, pub, topic, n, l)
	// Every consume call gets up to 8 messages: the bound is on messages
	// out, not on calls.
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumeGoroutines: bound, ConsumeBatch: 8})
	msgs := subscribe(t, sub, topic)

	// The reader holds messages until it holds the bound (or nothing more
	// comes), checks that no more comes, then settles them newest first, nacking every fifth message
	// the first time it sees it: calls see their messages settled out of
	// order, and some of them redelivered.
	acked, nackedOnce := map[string]bool{}, map[string]bool{}
	var held []*message.Message
	full, seen := 0, 0
	deadline := time.After(60 * time.Second)
	for len(acked) < n {
		select {
		case m := <-msgs:
			l.markDelivered(m.UUID)
			held = append(held, m)
			if len(held) < bound {
				continue
			}
			full++
			// Holding the bound, the reader must get nothing more.
			select {
			case extra := <-msgs:
				t.Fatalf("message %s handed out while %d were unsettled, ConsumeGoroutines is %d", extra.UUID, len(held), bound)
			case <-time.After(20 * time.Millisecond):
			}
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			sent, delivered, dup, lost := l.counts()
			t.Fatalf("stalled holding %d: sent %d delivered %d duplicated %d lost %d, acked %d", len(held), sent, delivered, dup, lost, len(acked))
		}
		for i := len(held) - 1; i >= 0; i-- {
			m := held[i]
			seen++
			if seen%5 == 0 && !nackedOnce[m.UUID] && !acked[m.UUID] {
				nackedOnce[m.UUID] = true
				m.Nack()
				continue
			}
			acked[m.UUID] = true
			m.Ack()
		}
		held = held[:0]
	}
	sent, delivered, dup, lost := l.counts()
	t.Logf("sent %d delivered %d duplicated %d lost %d; %d nacked once; the reader held the bound %d times", sent, delivered, dup, lost, len(nackedOnce), full)
	if lost != 0 || delivered != n {
		t.Fatalf("lost %d, delivered %d of %d", lost, delivered, n)
	}
	if dup < len(nackedOnce) {
		t.Errorf("duplicated %d, want at least the %d nacked messages again", dup, len(nackedOnce))
	}
	if full == 0 {
		t.Error("the subscription never had the bound of messages out at once")
	}
}

func TestSubscriber_a_slow_handler_does_not_hold_up_messages_of_other_consume_calls(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	l := newLedger()
	const n, batch = 40, 8
	fillOneQueue(t, b, pub, topic, n, l)
	// Two messages out at a time: the slow handler may hold one of them,
	// and the other keeps the rest of the topic moving.
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumeGoroutines: 2, ConsumeBatch: batch})
	msgs := subscribe(t, sub, topic)
	slow := receive(t, msgs, 15*time.Second)
	l.markDelivered(slow.UUID)

	// The rest of the slow message's call waits for it; every other call
	// goes on.
	consumeAll(t, msgs, l, n-batch+1, 30*time.Second)
	slow.Ack()
	consumeAll(t, msgs, l, n, 30*time.Second)
	sent, delivered, dup, lost := l.counts()
	t.Logf("sent %d delivered %d duplicated %d lost %d", sent, delivered, dup, lost)
	if lost != 0 || dup != 0 {
		t.Fatalf("lost %d, duplicated %d", lost, dup)
	}
}

// While handlers are quick, the messages of one consume call go out one
// after another, so a burst of n stored messages on one queue, which the
// client pulls at once, has n/ConsumeBatch messages out at a time, however
// many ConsumeGoroutines (SubscriberConfig.SplitAfter).
func TestSubscriber_a_burst_on_one_queue_has_one_message_out_per_consume_call_while_handlers_are_quick(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	l := newLedger()
	const n, batch = 12, 4
	const calls = n / batch
	fillOneQueue(t, b, pub, topic, n, l)
	// Holding a wave takes 200 ms: quick, for this test.
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumeGoroutines: 20, ConsumeBatch: batch, SplitAfter: time.Hour})
	msgs := subscribe(t, sub, topic)

	for wave := 1; wave <= batch; wave++ {
		held := holdWave(t, msgs, l, calls, fmt.Sprintf("wave %d; %d consume calls of %d", wave, calls, batch))
		for _, m := range held {
			m.Ack()
		}
	}
	sent, delivered, dup, lost := l.counts()
	t.Logf("sent %d delivered %d duplicated %d lost %d", sent, delivered, dup, lost)
	if lost != 0 || dup != 0 || delivered != n {
		t.Fatalf("delivered %d of %d, lost %d, duplicated %d", delivered, n, lost, dup)
	}
}

// holdWave receives want messages from msgs without settling them, checks
// that no more comes, and returns them.
func holdWave(t *testing.T, msgs <-chan *message.Message, l *ledger, want int, why string) []*message.Message {
	t.Helper()
	held := make([]*message.Message, 0, want)
	for len(held) < want {
		m := receive(t, msgs, 15*time.Second)
		l.markDelivered(m.UUID)
		held = append(held, m)
	}
	select {
	case extra := <-msgs:
		t.Fatalf("message %s handed out while %d were unsettled: %s", extra.UUID, len(held), why)
	case <-time.After(200 * time.Millisecond):
	}
	return held
}

// A handler slower than SplitAfter spreads the rest of its consume call: the
// call's other messages go out at once, up to ConsumeGoroutines, each acked
// or nacked on its own.
func TestSubscriber_a_slow_handler_spreads_the_rest_of_its_consume_call_within_ConsumeGoroutines(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	l := newLedger()
	const n, bound = 12, 4 // one consume call of 12
	fillOneQueue(t, b, pub, topic, n, l)
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumeGoroutines: bound, SplitAfter: 50 * time.Millisecond})
	msgs := subscribe(t, sub, topic)

	// The first message goes out alone; held past SplitAfter (by holdWave's
	// check), it makes the rest go out at once, as far as the bound allows.
	first := holdWave(t, msgs, l, 1, "one call hands out one message before a handler is slow")
	first[0].Ack()
	nacked := ""
	for rest := n - 1; rest > 0; {
		wave := holdWave(t, msgs, l, min(bound, rest), fmt.Sprintf("ConsumeGoroutines is %d", bound))
		for i, m := range wave {
			if nacked == "" && i == 1 {
				nacked = m.UUID // delivered again, on its own
				m.Nack()
				continue
			}
			m.Ack()
			rest--
		}
	}
	sent, delivered, dup, lost := l.counts()
	t.Logf("sent %d delivered %d duplicated %d lost %d", sent, delivered, dup, lost)
	if lost != 0 || delivered != n || dup != 1 {
		t.Fatalf("delivered %d of %d, lost %d, duplicated %d; want every message once and the nacked one twice", delivered, n, lost, dup)
	}
}

// Close while the rest of a call is spread over goroutines: the goroutines
// end (goleak in TestMain), and the group gets every message not committed.
func TestSubscriber_Close_while_a_consume_call_is_spread_loses_nothing(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	group := "spread-" + topic
	l := newLedger()
	const n, bound = 12, 4
	fillOneQueue(t, b, pub, topic, n, l)
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group, ConsumeGoroutines: bound,
		SplitAfter: 50 * time.Millisecond, CloseTimeout: 100 * time.Millisecond})
	msgs := subscribe(t, sub, topic)
	first := holdWave(t, msgs, l, 1, "one call hands out one message before a handler is slow")
	first[0].Ack()
	wave := holdWave(t, msgs, l, bound, fmt.Sprintf("ConsumeGoroutines is %d", bound))
	wave[0].Ack() // the others are never settled
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}

	// The call never finished, so nothing was committed: the group gets all
	// n again, among them everything the call handed out.
	next := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group})
	nextMsgs := subscribe(t, next, topic)
	for i := 0; i < n; i++ {
		m := receive(t, nextMsgs, 20*time.Second)
		l.markDelivered(m.UUID)
		m.Ack()
	}
	sent, delivered, dup, lost := l.counts()
	t.Logf("sent %d delivered %d duplicated %d lost %d", sent, delivered, dup, lost)
	if lost != 0 {
		t.Fatalf("lost %d of %d", lost, sent)
	}
	if dup != 1+bound {
		t.Errorf("duplicated %d, want the %d messages the unfinished call handed out", dup, 1+bound)
	}
}
