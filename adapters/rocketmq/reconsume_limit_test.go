//go:build !race

package rocketmq_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// failingUnmarshaler cannot read any delivered message and counts the tries.
type failingUnmarshaler struct {
	rocketmq.DefaultMarshaler
	tries atomic.Int32
}

func (m *failingUnmarshaler) Unmarshal(*primitive.MessageExt) (*message.Message, error) {
	m.tries.Add(1)
	return nil, errors.New("unreadable")
}

// A message the Marshaler cannot read ends in %DLQ%<group> after
// MaxReconsumeTimes broker redeliveries, whether the broker applies the limit
// (the default) or the subscriber does (BrokerRetry: the client gets none).
func TestSubscriber_unreadable_message_is_dead_lettered_after_MaxReconsumeTimes(t *testing.T) {
	for _, brokerRetry := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process nacks", true: "broker retry"}[brokerRetry], func(t *testing.T) {
			b := newBroker(t, rocketmqtest.Config{DelayScale: 0.001})
			pub := newPublisher(t, b, rocketmq.PublisherConfig{})
			const maxReconsume = 2
			m := &failingUnmarshaler{}
			sub := newSubscriber(t, b, rocketmq.SubscriberConfig{MaxReconsumeTimes: maxReconsume, Marshaler: m, BrokerRetry: brokerRetry})
			topic := newTopic()
			_ = subscribe(t, sub, topic)
			if err := pub.Publish(topic, message.NewMessage("u-1", []byte("x"))); err != nil {
				t.Fatal(err)
			}
			dlq := "%DLQ%" + sub.GroupFor(topic)
			deadline := time.Now().Add(15 * time.Second)
			for len(b.Messages(dlq)) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := len(b.Messages(dlq)); n != 1 {
				t.Fatalf("%s holds %d messages after %d reads, want 1", dlq, n, m.tries.Load())
			}
			time.Sleep(300 * time.Millisecond)
			if got := m.tries.Load(); got != maxReconsume+1 {
				t.Errorf("read %d times, want %d", got, maxReconsume+1)
			}
		})
	}
}

// A nacked message whose metadata.MaxReconsumeTimes is higher than the
// subscriber's limit is redelivered past the subscriber's limit.
func TestSubscriber_broker_retry_uses_the_limit_a_nacked_message_carries(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{DelayScale: 0.001})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{BrokerRetry: true, MaxReconsumeTimes: 1})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)
	if err := pub.Publish(topic, message.NewMessage("u-2", []byte("x"))); err != nil {
		t.Fatal(err)
	}
	const limit = 4
	for want := 0; want <= limit; want++ {
		got := receive(t, msgs, 15*time.Second)
		if rc := got.Metadata.Get(metadata.ReconsumeTimes); rc != string(rune('0'+want)) {
			t.Fatalf("delivery %d has reconsume times %s", want, rc)
		}
		got.Metadata.Set(metadata.MaxReconsumeTimes, "4")
		got.Nack()
	}
	dlq := "%DLQ%" + sub.GroupFor(topic)
	deadline := time.Now().Add(10 * time.Second)
	for len(b.Messages(dlq)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(b.Messages(dlq)); n != 1 {
		t.Fatalf("%s holds %d messages, want the nacked one after %d redeliveries", dlq, n, limit)
	}
}
