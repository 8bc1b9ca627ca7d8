//go:build !race

package rocketmqtest_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

func TestBroker_serves_the_admin_client(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DisableAutoCreateTopics: true})
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{b.NameServerAddr()})))
	if err != nil {
		t.Fatalf("new admin: %v", err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	ctx := context.Background()
	topic := uniqueName("admin")
	err = adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(b.BrokerAddr()),
		admin.WithReadQueueNums(8), admin.WithWriteQueueNums(8))
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	list, err := adm.FetchAllTopicList(ctx)
	if err != nil || !contains(list.TopicList, topic) {
		t.Fatalf("topic list %v, %v", list, err)
	}
	mqs, err := adm.FetchPublishMessageQueues(ctx, topic)
	if err != nil || len(mqs) != 8 {
		t.Fatalf("publish queues %d, %v", len(mqs), err)
	}

	// The created topic takes sends although auto-creation is off.
	p := newProducer(t, b)
	if _, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("x"))); err != nil {
		t.Fatalf("send to the created topic: %v", err)
	}

	if err := adm.DeleteTopic(ctx, admin.WithTopicDelete(topic), admin.WithBrokerAddrDelete(b.BrokerAddr()),
		admin.WithNameSrvAddr([]string{b.NameServerAddr()})); err != nil {
		t.Fatalf("delete: %v", err)
	}
	list, err = adm.FetchAllTopicList(ctx)
	if err != nil || contains(list.TopicList, topic) {
		t.Fatalf("topic list after delete %v, %v", list, err)
	}
}

func TestBroker_serves_orderly_consumers_queue_by_queue_in_order(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b, producer.WithQueueSelector(producer.NewHashQueueSelector()))
	topic, group := uniqueName("t"), uniqueName("g")
	const n = 30
	send := func(i int) {
		m := primitive.NewMessage(topic, []byte(strconv.Itoa(i)))
		m.WithShardingKey("key-" + strconv.Itoa(i%3))
		if _, err := p.SendSync(context.Background(), m); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	send(0)
	col := newCollector()
	startConsumer(t, b, consumerOpts{group: group, topic: topic, opts: []consumer.Option{consumer.WithConsumerOrder(true)}, handler: func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		col.add(msgs...)
		return consumer.ConsumeSuccess, nil
	}})
	for i := 1; i < n; i++ {
		send(i)
	}
	waitFor(t, 15*time.Second, "every message", func() bool { return len(col.distinct()) == n })
	last := map[string]int{}
	for _, m := range col.snapshot() {
		i, _ := strconv.Atoi(string(m.Body))
		key := m.GetShardingKey()
		if prev, ok := last[key]; ok && i <= prev {
			t.Errorf("key %s: message %d after %d", key, i, prev)
		}
		last[key] = i
	}
}
