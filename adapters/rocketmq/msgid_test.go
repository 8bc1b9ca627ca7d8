//go:build !race

package rocketmq_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/metadata"
)

func TestPublisher_gives_every_message_a_msg_id_of_its_own_in_the_rocketmq_layout(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	single := newPublisher(t, b, rocketmq.PublisherConfig{})
	batched := newPublisher(t, b, rocketmq.PublisherConfig{Batch: true})
	topic := newTopic()

	const goroutines, each = 4, 50
	l := newLedger()
	before := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2*goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(2)
		go func() { // single sends
			defer wg.Done()
			for i := 0; i < each; i++ {
				m := newMsg("single")
				l.markSent(m.UUID)
				if err := single.Publish(topic, m); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() { // one batch
			defer wg.Done()
			msgs := make([]*message.Message, each)
			for i := range msgs {
				msgs[i] = newMsg("batched")
				l.markSent(msgs[i].UUID)
			}
			if err := batched.Publish(topic, msgs...); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	after := time.Now()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	stored := b.Messages(topic)
	if len(stored) != 2*goroutines*each {
		t.Fatalf("stored %d messages, want %d", len(stored), 2*goroutines*each)
	}
	hostPID := primitive.CreateUniqID()[:12]
	monthStart := time.Date(before.Year(), before.Month(), 1, 0, 0, 0, 0, time.Local)
	byUUID := map[string]string{}
	seen := map[string]bool{}
	instance := ""
	for _, s := range stored {
		id := s.MsgID
		byUUID[s.Properties[rocketmq.PropertyUUID]] = id
		if seen[id] {
			t.Errorf("msg id %s given to two messages", id)
		}
		seen[id] = true
		raw, err := hex.DecodeString(id)
		if len(id) != 32 || err != nil || fmt.Sprintf("%X", raw) != id {
			t.Errorf("msg id %q is not 32 upper-case hex characters", id)
			continue
		}
		if id[:12] != hostPID {
			t.Errorf("msg id %s: host and process %s, the client's ids have %s", id, id[:12], hostPID)
		}
		if instance == "" {
			instance = id[12:20]
		}
		if id[12:20] == "00000000" || id[12:20] != instance {
			t.Errorf("msg id %s: instance %s, want one non-zero instance for the process (first %s)", id, id[12:20], instance)
		}
		ms := time.Duration(binary.BigEndian.Uint32(raw[10:14])) * time.Millisecond
		if at := monthStart.Add(ms); at.Before(before.Truncate(time.Millisecond)) || at.After(after) {
			t.Errorf("msg id %s says %s, the messages were published between %s and %s", id, at, before, after)
		}
	}

	// A subscriber sees the same id, as metadata.RocketMQMsgID.
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{})
	msgs := subscribe(t, sub, topic)
	for i := 0; i < len(stored); i++ {
		m := receive(t, msgs, 15*time.Second)
		l.markDelivered(m.UUID)
		if got, want := m.Metadata.Get(metadata.RocketMQMsgID), byUUID[m.UUID]; got != want {
			t.Errorf("message %s delivered with msg id %q, stored with %q", m.UUID, got, want)
		}
		m.Ack()
	}
	if sent, delivered, duplicated, lost := l.counts(); delivered != sent || duplicated != 0 || lost != 0 {
		t.Errorf("sent %d, delivered %d, duplicated %d, lost %d", sent, delivered, duplicated, lost)
	}
}

// ownIDMarshaler sets the message id itself.
type ownIDMarshaler struct{ rocketmq.DefaultMarshaler }

func (m ownIDMarshaler) Marshal(topic string, msg *message.Message) (*primitive.Message, error) {
	out, err := m.DefaultMarshaler.Marshal(topic, msg)
	if err == nil {
		out.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, "OWN-"+msg.UUID)
	}
	return out, err
}

func TestPublisher_keeps_a_msg_id_set_by_a_custom_marshaler(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	for _, batch := range []bool{false, true} {
		pub := newPublisher(t, b, rocketmq.PublisherConfig{Batch: batch, Marshaler: ownIDMarshaler{}})
		topic := newTopic()
		msgs := []*message.Message{newMsg("a"), newMsg("b")}
		if err := pub.Publish(topic, msgs...); err != nil {
			t.Fatalf("batch %v: Publish: %v", batch, err)
		}
		stored := b.Messages(topic)
		if len(stored) != len(msgs) {
			t.Fatalf("batch %v: stored %d messages, want %d", batch, len(stored), len(msgs))
		}
		for _, s := range stored {
			if want := "OWN-" + s.Properties[rocketmq.PropertyUUID]; s.MsgID != want {
				t.Errorf("batch %v: stored msg id %q, want the marshaler's %q", batch, s.MsgID, want)
			}
		}
	}
}
