//go:build !race

package rocketmqtest_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
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

func TestBroker_keeps_async_oneway_batch_and_compressed_sends_intact(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")
	ctx := context.Background()

	big := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB: the client compresses it
	want := map[string][]byte{}                           // body by the "n" property

	send := func(n string, body []byte) *primitive.Message {
		m := primitive.NewMessage(topic, body)
		m.WithTag("tag-" + n)
		m.WithKeys([]string{"key-" + n})
		m.WithProperty("n", n)
		want[n] = body
		return m
	}

	ids := map[string]string{} // MsgID from the send result, by "n"
	res, err := p.SendSync(ctx, send("sync", []byte("s")))
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	ids["sync"] = res.MsgID
	if res, err = p.SendSync(ctx, send("big", big)); err != nil {
		t.Fatalf("big: %v", err)
	}
	ids["big"] = res.MsgID
	done := make(chan error, 1)
	var asyncID string
	err = p.SendAsync(ctx, func(_ context.Context, r *primitive.SendResult, err error) {
		if err == nil && r.Status != primitive.SendOK {
			err = fmt.Errorf("status %d", r.Status)
		}
		if err == nil {
			asyncID = r.MsgID
		}
		done <- err
	}, send("async", []byte("a")))
	if err != nil {
		t.Fatalf("async: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("async callback: %v", err)
	}
	ids["async"] = asyncID
	if err := p.SendOneWay(ctx, send("oneway", []byte("o"))); err != nil {
		t.Fatalf("oneway: %v", err)
	}
	res, err = p.SendSync(ctx, send("b1", []byte("batch 1")), send("b2", []byte("batch 2")), send("b3", big))
	if err != nil {
		t.Fatalf("batch: %v", err)
	}
	if ids := strings.Split(res.OffsetMsgID, ","); len(ids) != 3 {
		t.Errorf("batch OffsetMsgID = %q, want 3 ids", res.OffsetMsgID)
	}

	col := newCollector()
	startConsumer(t, b, consumerOpts{group: uniqueName("g"), topic: topic, handler: collectInto(col)})
	byN := func() map[string]*primitive.MessageExt {
		out := map[string]*primitive.MessageExt{}
		for _, m := range col.snapshot() {
			out[m.GetProperty("n")] = m
		}
		return out
	}
	waitFor(t, 10*time.Second, "all messages", func() bool { return len(byN()) == len(want) })
	for n, m := range byN() {
		if id := ids[n]; id != "" && m.MsgId != id {
			t.Errorf("%s: consumer MsgId %q, SendResult.MsgID %q", n, m.MsgId, id)
		}
		if !bytes.Equal(m.Body, want[n]) {
			t.Errorf("%s: body of %d bytes differs from the %d sent", n, len(m.Body), len(want[n]))
		}
		if m.GetTags() != "tag-"+n || m.GetKeys() != "key-"+n {
			t.Errorf("%s: tags %q keys %q", n, m.GetTags(), m.GetKeys())
		}
	}
	if m := byN()["big"]; m.SysFlag&1 == 0 {
		t.Errorf("the 16 KiB body was not stored compressed (sysFlag %d)", m.SysFlag)
	}
	stored := b.Messages(topic)
	if len(stored) != len(want) {
		t.Fatalf("broker stores %d messages, want %d", len(stored), len(want))
	}
	for _, s := range stored {
		if !bytes.Equal(s.Body, want[s.Properties["n"]]) {
			t.Errorf("inspection of %s returns a different body", s.Properties["n"])
		}
	}
}

func TestBroker_filters_by_tag_from_the_heartbeat_subscription(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")
	for i, tag := range []string{"A", "B", "C", "A", "B", "C"} {
		m := primitive.NewMessage(topic, []byte(strconv.Itoa(i)))
		m.WithTag(tag)
		if _, err := p.SendSync(context.Background(), m); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	col := newCollector()
	startConsumer(t, b, consumerOpts{
		group: uniqueName("g"), topic: topic,
		selector: consumer.MessageSelector{Type: consumer.TAG, Expression: "A || C"},
		handler:  collectInto(col),
	})
	waitFor(t, 10*time.Second, "A and C messages", func() bool { return len(col.distinct()) >= 4 })
	// Give a wrongly delivered B the time to show up: long-poll rounds are 1 s.
	time.Sleep(300 * time.Millisecond)
	for _, m := range col.snapshot() {
		if m.GetTags() == "B" {
			t.Errorf("message with tag B delivered to an A || C subscription")
		}
	}
	if n := len(col.distinct()); n != 4 {
		t.Errorf("delivered %d distinct messages, want 4", n)
	}
}

func TestBroker_gives_every_consumer_group_every_message(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")
	const n = 20
	for i := 0; i < n; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(strconv.Itoa(i)))); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	c1, c2 := newCollector(), newCollector()
	g1, g2 := uniqueName("g1"), uniqueName("g2")
	startConsumer(t, b, consumerOpts{group: g1, topic: topic, handler: collectInto(c1)})
	startConsumer(t, b, consumerOpts{group: g2, topic: topic, handler: collectInto(c2)})
	waitFor(t, 10*time.Second, "both groups", func() bool { return len(c1.distinct()) == n && len(c2.distinct()) == n })
	waitFor(t, 10*time.Second, "committed offsets of both groups", func() bool {
		sum := func(m map[int]int64) (s int64) {
			for _, v := range m {
				s += v
			}
			return s
		}
		return sum(b.ConsumerOffsets(g1, topic)) == n && sum(b.ConsumerOffsets(g2, topic)) == n
	})
}
