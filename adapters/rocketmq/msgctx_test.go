//go:build !race

package rocketmq_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

type ctxKey struct{}

func TestSubscriber_message_context_keeps_the_Subscribe_values_and_deadline_and_ends_with_the_subscription(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: "ctx-" + watermill.NewShortUUID()})
	topic := newTopic()

	deadline := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(context.WithValue(context.Background(), ctxKey{}, "v"), deadline)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(topic, newMsg("a"), newMsg("b")); err != nil {
		t.Fatal(err)
	}

	first := receive(t, msgs, 10*time.Second)
	mctx := first.Context()
	if got := mctx.Value(ctxKey{}); got != "v" {
		t.Errorf("message context value = %v, want v", got)
	}
	if got, ok := mctx.Deadline(); !ok || !got.Equal(deadline) {
		t.Errorf("message context deadline = %v, %v; want %v", got, ok, deadline)
	}
	if mctx.Err() != nil {
		t.Fatalf("message context done before Ack: %v", mctx.Err())
	}
	first.Ack()
	select {
	case <-mctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("message context not cancelled after Ack")
	}

	// Ending the Subscribe context cancels the context of a message still in
	// its handler.
	second := receive(t, msgs, 10*time.Second)
	cancel()
	select {
	case <-second.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("message context not cancelled when the Subscribe context ended")
	}
	second.Ack()
}
