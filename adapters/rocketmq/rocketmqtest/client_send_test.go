//go:build !race

package rocketmqtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

func TestBroker_delivers_a_sync_send_to_a_push_consumer_with_the_same_msg_id(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")

	msg := primitive.NewMessage(topic, []byte("hello"))
	msg.WithTag("TagA")
	msg.WithKeys([]string{"k1", "k2"})
	msg.WithProperty("user", "value")
	res, err := p.SendSync(context.Background(), msg)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if res.Status != primitive.SendOK || res.MsgID == "" || res.OffsetMsgID == "" {
		t.Fatalf("unexpected send result %+v", res)
	}

	col := newCollector()
	startConsumer(t, b, consumerOpts{group: uniqueName("g"), topic: topic, handler: collectInto(col)})
	waitFor(t, 10*time.Second, "delivery", func() bool { return len(col.distinct()) == 1 })

	got := col.snapshot()[0]
	if got.MsgId != res.MsgID {
		t.Errorf("MsgId = %q, want %q", got.MsgId, res.MsgID)
	}
	if got.OffsetMsgId != res.OffsetMsgID {
		t.Errorf("OffsetMsgId = %q, want %q", got.OffsetMsgId, res.OffsetMsgID)
	}
	if string(got.Body) != "hello" || got.GetTags() != "TagA" || got.GetKeys() != "k1 k2" || got.GetProperty("user") != "value" {
		t.Errorf("message changed in transit: body=%q tags=%q keys=%q user=%q", got.Body, got.GetTags(), got.GetKeys(), got.GetProperty("user"))
	}
	if got.Topic != topic || got.Queue.QueueId != res.MessageQueue.QueueId || got.QueueOffset != res.QueueOffset {
		t.Errorf("position = %s/%d@%d, want %s/%d@%d", got.Topic, got.Queue.QueueId, got.QueueOffset, topic, res.MessageQueue.QueueId, res.QueueOffset)
	}
}
