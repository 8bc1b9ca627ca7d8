//go:build !race

package rocketmq_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/metadata"
)

func TestPublisher_message_round_trips_through_the_broker(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)

	msg := message.NewMessage(watermill.NewUUID(), []byte("hello"))
	msg.Metadata = message.Metadata{
		"DELAY": "3", "plain": "v", "empty": "", "unicode ✓": "значение",
		metadata.Tags: "TagA", metadata.Keys: "k1 k2",
	}
	if err := pub.Publish(topic, msg); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	got := receive(t, msgs, 10*time.Second)
	got.Ack()

	if got.UUID != msg.UUID || string(got.Payload) != "hello" {
		t.Fatalf("got %s %q, want %s hello", got.UUID, got.Payload, msg.UUID)
	}
	user := map[string]string{}
	for k, v := range got.Metadata {
		user[k] = v
	}
	for _, k := range deliveryFacts {
		if user[k] == "" && k != metadata.RocketMQQueueOffset {
			t.Errorf("delivery fact %s missing", k)
		}
		delete(user, k)
	}
	if diff := cmp.Diff(map[string]string(msg.Metadata), user); diff != "" {
		t.Errorf("metadata (-sent +delivered):\n%s", diff)
	}
	if got.Metadata.Get(metadata.RocketMQTopic) != topic {
		t.Errorf("topic metadata = %q", got.Metadata.Get(metadata.RocketMQTopic))
	}
	stored := b.Messages(topic)
	if len(stored) != 1 || stored[0].Properties["DELAY"] != "" {
		t.Errorf("stored %d messages, DELAY=%q; want 1 message without DELAY", len(stored), stored[0].Properties["DELAY"])
	}
}

func TestPublisherAndSubscriber_with_a_namespace_use_prefixed_topics(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{Namespace: "tenant1"})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{Namespace: "tenant1"})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)
	sent := newMsg("x")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	got := receive(t, msgs, 10*time.Second)
	got.Ack()
	if got.UUID != sent.UUID {
		t.Fatalf("got %s, want %s", got.UUID, sent.UUID)
	}
	if v := got.Metadata.Get(metadata.RocketMQTopic); v != topic {
		t.Errorf("topic metadata = %q, want %q without the namespace", v, topic)
	}
	if n := len(b.Messages("tenant1%" + topic)); n != 1 {
		t.Errorf("%d messages in the namespaced topic, want 1", n)
	}
	if n := len(b.Messages(topic)); n != 0 {
		t.Errorf("%d messages in the bare topic, want 0", n)
	}
}
