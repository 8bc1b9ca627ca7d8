//go:build !race

package rocketmq_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
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

func TestSubscriber_Close_takes_back_unread_messages_and_they_reach_the_group_again(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	group := "reclaim-" + watermill.NewShortUUID()
	// CloseTimeout never passes on this clock: Close can return only if it
	// does not wait for messages nobody read.
	fake := clocktest.NewFake(time.Unix(1_700_000_000, 0))
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group, CloseTimeout: time.Hour, Clock: fake})
	msgs := subscribe(t, sub, topic)

	l := newLedger()
	const total = 10
	batch := make([]*message.Message, total)
	for i := range batch {
		batch[i] = newMsg("m")
		l.markSent(batch[i].UUID)
	}
	if err := pub.Publish(topic, batch...); err != nil {
		t.Fatal(err)
	}
	held := receive(t, msgs, 10*time.Second)
	l.markDelivered(held.UUID)
	// Let the consumer hand out what it can, so some sits unread.
	deadline := time.Now().Add(5 * time.Second)
	for len(msgs) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(msgs) == 0 {
		t.Fatal("no message waiting unread in the output channel")
	}

	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	<-held.Context().Done()
	held.Ack()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close waits for messages nobody read")
	}
	for m := range msgs {
		t.Errorf("message %s read after Close took it back", m.UUID)
	}

	// The unread ones were not committed: the group gets them again. The
	// acked one may come again too (a queue's committed offset stops at its
	// lowest unacked message): at-least-once, so duplicates are allowed but
	// at most that one.
	again := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group})
	consumeAll(t, subscribe(t, again, topic), l, total, 30*time.Second)
	sent, delivered, dup, lost := l.counts()
	t.Logf("sent %d delivered %d duplicated %d lost %d", sent, delivered, dup, lost)
	if lost != 0 || dup > 1 {
		t.Fatalf("lost %d, duplicated %d; want none lost and at most the acked one again", lost, dup)
	}
}
