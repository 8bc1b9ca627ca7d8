//go:build !race

package rocketmqtest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

var instanceSeq atomic.Int64

func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e9, instanceSeq.Add(1))
}

func newProducer(t testing.TB, b *rocketmqtest.Broker, opts ...producer.Option) rocketmq.Producer {
	t.Helper()
	all := append([]producer.Option{
		producer.WithNameServer([]string{b.NameServerAddr()}),
		producer.WithInstanceName(uniqueName("p")),
		producer.WithGroupName(uniqueName("pg")),
	}, opts...)
	p, err := rocketmq.NewProducer(all...)
	if err != nil {
		t.Fatalf("new producer: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("start producer: %v", err)
	}
	t.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// collector records delivered messages by MsgId.
type collector struct {
	mu   sync.Mutex
	msgs []*primitive.MessageExt
	ch   chan struct{}
}

func newCollector() *collector { return &collector{ch: make(chan struct{}, 1)} }

func (c *collector) add(msgs ...*primitive.MessageExt) {
	c.mu.Lock()
	c.msgs = append(c.msgs, msgs...)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []*primitive.MessageExt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*primitive.MessageExt(nil), c.msgs...)
}

func (c *collector) distinct() map[string]*primitive.MessageExt {
	out := map[string]*primitive.MessageExt{}
	for _, m := range c.snapshot() {
		out[m.MsgId] = m
	}
	return out
}

// waitFor waits until cond holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type consumerOpts struct {
	group    string
	topic    string
	selector consumer.MessageSelector
	opts     []consumer.Option
	handler  func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error)
}

func startConsumer(t testing.TB, b *rocketmqtest.Broker, co consumerOpts) rocketmq.PushConsumer {
	t.Helper()
	all := append([]consumer.Option{
		consumer.WithNameServer([]string{b.NameServerAddr()}),
		consumer.WithGroupName(co.group),
		consumer.WithInstance(uniqueName("c")),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	}, co.opts...)
	c, err := rocketmq.NewPushConsumer(all...)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	if err := c.Subscribe(co.topic, co.selector, co.handler); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("start consumer: %v", err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { _ = c.Shutdown() }) })
	return c
}

func collectInto(c *collector) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		c.add(msgs...)
		return consumer.ConsumeSuccess, nil
	}
}
