//go:build !race

package rocketmqtest_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

// sendToEveryQueue sends one message to each queue of topic and returns
// their MsgIds.
func sendToEveryQueue(t *testing.T, p interface {
	SendSync(context.Context, ...*primitive.Message) (*primitive.SendResult, error)
}, topic string, queues int, tag string) []string {
	t.Helper()
	var ids []string
	for q := 0; q < queues; q++ {
		m := primitive.NewMessage(topic, []byte(tag+strconv.Itoa(q)))
		m.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: "broker-a", QueueId: q}
		res, err := p.SendSync(context.Background(), m)
		if err != nil {
			t.Fatalf("send to queue %d: %v", q, err)
		}
		if res.MessageQueue.QueueId != q {
			t.Fatalf("message for queue %d went to queue %d", q, res.MessageQueue.QueueId)
		}
		ids = append(ids, res.MsgID)
	}
	return ids
}

func TestBroker_splits_queues_between_two_consumers_and_the_survivor_takes_over(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	topic, group := uniqueName("t"), uniqueName("g")
	sendToEveryQueue(t, p, topic, 4, "warmup")

	c1, c2 := newCollector(), newCollector()
	startConsumer(t, b, consumerOpts{group: group, topic: topic, handler: collectInto(c1)})
	second := startConsumer(t, b, consumerOpts{group: group, topic: topic, handler: collectInto(c2)})
	waitFor(t, 5*time.Second, "two members", func() bool { return len(b.ConsumerGroupMembers(group)) == 2 })

	// After the rebalance, each consumer owns two of the four queues.
	queuesOf := func(c *collector, ids map[string]bool) map[int]bool {
		out := map[int]bool{}
		for _, m := range c.snapshot() {
			if ids[m.MsgId] {
				out[m.Queue.QueueId] = true
			}
		}
		return out
	}
	var round map[string]bool
	waitFor(t, 5*time.Second, "both consumers to own queues", func() bool {
		round = map[string]bool{}
		for _, id := range sendToEveryQueue(t, p, topic, 4, "split") {
			round[id] = true
		}
		time.Sleep(200 * time.Millisecond)
		return len(queuesOf(c1, round)) == 2 && len(queuesOf(c2, round)) == 2
	})

	if err := second.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	stopped := time.Now()
	after := map[string]bool{}
	for _, id := range sendToEveryQueue(t, p, topic, 4, "after") {
		after[id] = true
	}
	waitFor(t, 10*time.Second, "the survivor to consume every queue", func() bool { return len(queuesOf(c1, after)) == 4 })
	// Well under the client's own rebalance, every 20 s: the broker's
	// NOTIFY_CONSUMER_IDS_CHANGED did it (the bound leaves room for a
	// loaded machine).
	if took := time.Since(stopped); took > 5*time.Second {
		t.Errorf("the survivor took over all queues after %v, want within 5s", took)
	}
}

func TestBroker_broadcasts_every_message_to_every_consumer(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic, group := uniqueName("t"), uniqueName("g")
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("create"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	c1, c2 := newCollector(), newCollector()
	opts := []consumer.Option{consumer.WithConsumerModel(consumer.BroadCasting)}
	startConsumer(t, b, consumerOpts{group: group, topic: topic, opts: opts, handler: collectInto(c1)})
	startConsumer(t, b, consumerOpts{group: group, topic: topic, opts: opts, handler: collectInto(c2)})
	waitFor(t, 5*time.Second, "two members", func() bool { return len(b.ConsumerGroupMembers(group)) == 2 })
	time.Sleep(200 * time.Millisecond) // let both finish their first rebalance

	const n = 10
	sent := map[string]bool{}
	for i := 0; i < n; i++ {
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(strconv.Itoa(i))))
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		sent[res.MsgID] = true
	}
	got := func(c *collector) int {
		k := 0
		for id := range c.distinct() {
			if sent[id] {
				k++
			}
		}
		return k
	}
	waitFor(t, 10*time.Second, "every message at both consumers", func() bool { return got(c1) == n && got(c2) == n })
}

func TestBroker_redelivers_after_the_scaled_delay_levels_in_order(t *testing.T) {
	levels := make([]time.Duration, 18)
	for i := range levels {
		levels[i] = time.Duration(i+1) * time.Second // level n = n seconds
	}
	const scale = 0.02 // level n = 20n ms
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DelayLevels: levels, DelayScale: scale})
	p := newProducer(t, b)
	topic, group := uniqueName("t"), uniqueName("g")
	res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("x")))
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	type delivery struct {
		at    time.Time
		times int32
	}
	deliveries := make(chan delivery, 16)
	startConsumer(t, b, consumerOpts{
		group: group, topic: topic,
		opts: []consumer.Option{consumer.WithMaxReconsumeTimes(4)},
		handler: func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			for _, m := range msgs {
				if m.MsgId == res.MsgID {
					deliveries <- delivery{time.Now(), m.ReconsumeTimes}
				}
			}
			return consumer.ConsumeRetryLater, nil
		},
	})
	var got []delivery
	timeout := time.After(10 * time.Second)
	for len(got) < 5 {
		select {
		case d := <-deliveries:
			got = append(got, d)
		case <-timeout:
			t.Fatalf("got %d deliveries, want 5", len(got))
		}
	}
	if first := got[1].at.Sub(got[0].at); first > 2*time.Second {
		t.Errorf("a new group waited %v for its first redelivery, want under 2s", first)
	}
	for i, d := range got {
		if d.times != int32(i) {
			t.Errorf("delivery %d has ReconsumeTimes %d, want %d", i, d.times, i)
		}
		if i == 0 {
			continue
		}
		// Delay level 0 from the client means level 3 + reconsume times.
		min := time.Duration(float64(levels[3+i-1-1]) * scale)
		if gap := d.at.Sub(got[i-1].at); gap < min {
			t.Errorf("redelivery %d came after %v, before its delay level's %v", i, gap, min)
		}
	}
}

func TestBroker_delays_a_message_sent_with_a_delay_level(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DelayScale: 0.1}) // level 2 = 500 ms
	p := newProducer(t, b)
	topic := uniqueName("t")
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("create"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	m := primitive.NewMessage(topic, []byte("later"))
	m.WithDelayTimeLevel(2)
	sentAt := time.Now()
	res, err := p.SendSync(context.Background(), m)
	if err != nil {
		t.Fatalf("send delayed: %v", err)
	}
	if sched := b.Messages("SCHEDULE_TOPIC_XXXX"); len(sched) != 1 || sched[0].QueueID != 1 || sched[0].Properties["REAL_TOPIC"] != topic {
		t.Fatalf("schedule topic holds %+v, want the message in queue 1 with REAL_TOPIC", sched)
	}
	col := newCollector()
	startConsumer(t, b, consumerOpts{group: uniqueName("g"), topic: topic, handler: collectInto(col)})
	waitFor(t, 10*time.Second, "the delayed message", func() bool { return col.distinct()[res.MsgID] != nil })
	if waited := time.Since(sentAt); waited < 500*time.Millisecond {
		t.Errorf("delayed message delivered after %v, before its 500ms level", waited)
	}
	if got := col.distinct()[res.MsgID]; string(got.Body) != "later" || got.Topic != topic {
		t.Errorf("delivered %q on %q", got.Body, got.Topic)
	}
}
