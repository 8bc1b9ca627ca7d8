//go:build !race

package brokersuite_test

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// timerSlack absorbs the difference between our clock reading before a send
// and the broker's store timestamp a delay counts from. The delay itself is
// never shortened: a delivery earlier than delay minus slack fails.
const timerSlack = 50 * time.Millisecond

// Messages sent together with delay levels 5, 3 and 1 arrive in the order
// 1, 3, 5, each no earlier than its level's delay.
//
// Undelayed messages go first, one to every queue of the topic, and the test
// waits for all of them: a consumer's first pull from a queue can come more
// than a second after Subscribe on a loaded two-broker cluster, which would
// otherwise decide the order instead of the delay levels.
func TestDelayLevels_hold_each_message_for_its_level(t *testing.T) {
	t.Parallel()
	eachTarget(t, func(t *testing.T, tg *target) {
		pub := newPublisher(t, tg, rocketmq.PublisherConfig{})
		sub := newSubscriber(t, tg, rocketmq.SubscriberConfig{TopicQueueNums: 4})
		topic := unique("delay")
		msgs := subscribe(t, sub, topic)

		// The publisher picks queues round robin, so this touches each one.
		warmUp := map[string]bool{}
		for i := range 4 * tg.brokers {
			m := newMessage(fmt.Sprint("undelayed-", i), nil)
			warmUp[m.UUID] = true
			if err := pub.Publish(topic, m); err != nil {
				t.Fatalf("Publish undelayed %d: %v", i, err)
			}
		}
		for range warmUp {
			m := receive(t, msgs, patience)
			m.Ack()
			if !warmUp[m.UUID] {
				t.Fatalf("delivered %s before the delayed messages were sent, not an undelayed one", m.UUID)
			}
		}

		levels := map[string]int{}
		start := time.Now()
		for _, level := range []int{5, 3, 1} {
			m := newMessage(fmt.Sprint("level-", level), message.Metadata{metadata.DelayLevel: strconv.Itoa(level)})
			levels[m.UUID] = level
			if err := pub.Publish(topic, m); err != nil {
				t.Fatalf("Publish level %d: %v", level, err)
			}
		}
		var order []int
		for len(order) < len(levels) {
			m := receive(t, msgs, patience)
			waited := time.Since(start)
			m.Ack()
			level, ok := levels[m.UUID]
			if !ok {
				t.Fatalf("delivered a message that is not one of the delayed ones: %s", m.UUID)
			}
			if want := delayOf(level); waited < want-timerSlack {
				t.Errorf("level %d delivered after %v, before its delay %v", level, waited, want)
			}
			order = append(order, level)
		}
		if fmt.Sprint(order) != "[1 3 5]" {
			t.Errorf("delivery order by level %v, want [1 3 5]", order)
		}
	})
}

// A nacked message comes back from the broker (BrokerRetry) with the same
// UUID, payload, message id and topic and a growing reconsume count: first
// after the broker's own choice (level 3 + reconsume times 0 = 3 s here),
// then at the level the handler set (1), ahead of a message sent at the same
// time with level 3 (two seconds apart, for a loaded machine).
func TestBrokerRetry_redelivers_with_reconsume_count_and_stable_ids(t *testing.T) {
	t.Parallel()
	eachTarget(t, func(t *testing.T, tg *target) {
		pub := newPublisher(t, tg, rocketmq.PublisherConfig{})
		sub := newSubscriber(t, tg, rocketmq.SubscriberConfig{BrokerRetry: true})
		topic := unique("retry")
		msgs := subscribe(t, sub, topic)

		sent := newMessage("retry me", message.Metadata{"k": "v"})
		if err := pub.Publish(topic, sent); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		var msgID string
		check := func(m *message.Message, reconsume int) {
			t.Helper()
			if m.UUID != sent.UUID || string(m.Payload) != "retry me" || m.Metadata.Get("k") != "v" {
				t.Fatalf("delivery %d: %s %q k=%q, want %s %q k=v", reconsume, m.UUID, m.Payload, m.Metadata.Get("k"), sent.UUID, "retry me")
			}
			if got := m.Metadata.Get(metadata.ReconsumeTimes); got != strconv.Itoa(reconsume) {
				t.Errorf("delivery %d: reconsume times %q", reconsume, got)
			}
			if got := m.Metadata.Get(metadata.RocketMQTopic); got != topic {
				t.Errorf("delivery %d: topic %q, want %q", reconsume, got, topic)
			}
			id := m.Metadata.Get(metadata.RocketMQMsgID)
			if msgID == "" {
				msgID = id
			}
			if id == "" || id != msgID {
				t.Errorf("delivery %d: message id %q, first delivery had %q", reconsume, id, msgID)
			}
		}

		first := receive(t, msgs, patience)
		check(first, 0)
		nacked := time.Now()
		first.Nack()

		second := receive(t, msgs, patience)
		if waited := time.Since(nacked); waited < delayOf(3)-timerSlack {
			t.Errorf("first redelivery after %v, want the broker's level 3 (%v)", waited, delayOf(3))
		}
		check(second, 1)
		marker := newMessage("marker", message.Metadata{metadata.DelayLevel: "3"})
		second.Metadata.Set(metadata.DelayLevel, "1")
		second.Nack()
		if err := pub.Publish(topic, marker); err != nil {
			t.Fatalf("Publish marker: %v", err)
		}

		third := receive(t, msgs, patience)
		if third.UUID == marker.UUID {
			t.Fatalf("the level 3 marker came before the redelivery at level 1")
		}
		check(third, 2)
		third.Ack()
		if m := receive(t, msgs, patience); m.UUID != marker.UUID {
			t.Errorf("after the acked redelivery got %s (reconsume %s), want the marker",
				m.UUID, m.Metadata.Get(metadata.ReconsumeTimes))
		} else {
			m.Ack()
		}
	})
}

// After MaxReconsumeTimes broker redeliveries the next nack moves the message
// to %DLQ%<group>, where a consumer reads it with its UUID and payload; the
// group's other messages are not affected.
func TestBrokerRetry_moves_the_message_to_the_DLQ_after_MaxReconsumeTimes(t *testing.T) {
	t.Parallel()
	eachTarget(t, func(t *testing.T, tg *target) {
		pub := newPublisher(t, tg, rocketmq.PublisherConfig{})
		sub := newSubscriber(t, tg, rocketmq.SubscriberConfig{BrokerRetry: true, MaxReconsumeTimes: 2})
		topic := unique("dlq")
		// Subscribing first creates %DLQ%<group> on every broker: it has no
		// route until the first dead letter, and a consumer cannot start
		// without one.
		dlqSub := newSubscriber(t, tg, rocketmq.SubscriberConfig{})
		dead := subscribe(t, dlqSub, "%DLQ%"+sub.GroupFor(topic))
		msgs := subscribe(t, sub, topic)

		l := newLedger()
		poison := newMessage("poison", nil)
		var good []*message.Message
		for i := range 3 {
			good = append(good, newMessage(fmt.Sprint("good-", i), nil))
		}
		for _, m := range append([]*message.Message{poison}, good...) {
			if err := pub.Publish(topic, m); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if m != poison {
				l.markSent(m.UUID)
			}
		}

		var reconsumes []string
		deadline := time.After(90 * time.Second)
		for {
			select {
			case m := <-msgs:
				if m.UUID != poison.UUID {
					l.markDelivered(m.UUID)
					m.Ack()
					continue
				}
				reconsumes = append(reconsumes, m.Metadata.Get(metadata.ReconsumeTimes))
				m.Metadata.Set(metadata.DelayLevel, "1")
				m.Nack()
				continue
			case d := <-dead:
				d.Ack()
				if d.UUID != poison.UUID || string(d.Payload) != "poison" {
					t.Fatalf("DLQ delivered %s %q, want %s poison", d.UUID, d.Payload, poison.UUID)
				}
			case <-deadline:
				t.Fatalf("poison not in the DLQ after 90s; consumed with reconsume times %v", reconsumes)
			}
			break
		}
		if fmt.Sprint(reconsumes) != "[0 1 2]" {
			t.Errorf("poison consumed with reconsume times %v, want [0 1 2] (MaxReconsumeTimes 2)", reconsumes)
		}
		c := l.waitDelivered(t, patience)
		t.Logf("good messages: %v", c)
		// Nothing of the poison message comes back to the group.
		select {
		case m := <-msgs:
			if m.UUID == poison.UUID {
				t.Errorf("poison delivered again after the DLQ (reconsume %s)", m.Metadata.Get(metadata.ReconsumeTimes))
			}
			m.Ack()
		case <-time.After(2 * time.Second):
		}
	})
}

// Every subscriber of a broadcasting group receives every message, marked
// metadata.Broadcast.
func TestBroadcasting_delivers_every_message_to_every_subscriber(t *testing.T) {
	t.Parallel()
	eachTarget(t, func(t *testing.T, tg *target) {
		pub := newPublisher(t, tg, rocketmq.PublisherConfig{})
		group := unique("bc")
		topic := unique("bc")
		const n = 20
		var ledgers []*ledger
		var unmarked [2]atomic.Int32
		for i := range 2 {
			sub := newSubscriber(t, tg, rocketmq.SubscriberConfig{ConsumerGroup: group, Broadcasting: true})
			msgs := subscribe(t, sub, topic)
			l := newLedger()
			ledgers = append(ledgers, l)
			marked := make(chan *message.Message)
			go func() {
				defer close(marked)
				for m := range msgs {
					if m.Metadata.Get(metadata.Broadcast) != "true" {
						unmarked[i].Add(1)
					}
					marked <- m
				}
			}()
			consumeInto(marked, l)
		}
		for i := range n {
			m := newMessage(fmt.Sprint("bc-", i), nil)
			for _, l := range ledgers {
				l.markSent(m.UUID)
			}
			if err := pub.Publish(topic, m); err != nil {
				t.Fatalf("Publish: %v", err)
			}
		}
		for i, l := range ledgers {
			c := l.waitDelivered(t, 60*time.Second)
			t.Logf("subscriber %d: %v", i, c)
			if c.delivered != n || c.unknown != 0 {
				t.Errorf("subscriber %d: %v, want all %d", i, c, n)
			}
		}
		if a, b := unmarked[0].Load(), unmarked[1].Load(); a != 0 || b != 0 {
			t.Errorf("deliveries without metadata.Broadcast: %d and %d", a, b)
		}
	})
}
