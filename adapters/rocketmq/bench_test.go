//go:build !race

package rocketmq_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	rmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/internal/benchmeter"
)

// The benchmarks compare the raw client and the adapter in one run, against
// the same in-process broker. allocs/op include the broker's own work, which
// is the same for both, so the difference is the adapter's.

var benchPayload = make([]byte, 256)

func newRawProducer(b *testing.B, broker *rocketmqtest.Broker) rmq.Producer {
	b.Helper()
	p, err := rmq.NewProducer(
		producer.WithNameServer([]string{broker.NameServerAddr()}),
		producer.WithInstanceName("raw-"+watermill.NewShortUUID()),
		producer.WithGroupName("raw-pg"),
		producer.WithRetry(0),
	)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Shutdown() })
	return p
}

// cpuMeter times a benchmark's section with benchmeter and reports the
// process's CPU time per operation (user + system), which other load on a
// shared machine disturbs far less than wall time. It counts the in-process
// broker too, the same for both sides. Under callgrind the same section gives
// the instructions per operation (scripts/callgrind-bench).
type cpuMeter struct{ m *benchmeter.Meter }

func startCPU() cpuMeter { return cpuMeter{benchmeter.Start()} }

func (m cpuMeter) report(b *testing.B) {
	if cpu, ok := m.m.Stop(); ok {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
}

// startSection starts a benchmark's timed section. It collects garbage
// first, so that every run, raw or adapter, starts its section from the same
// heap: the broker keeps the topic in memory, and the collections inside a
// section, each of which marks it, then come at the same points of every run.
func startSection(b *testing.B) cpuMeter {
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	return startCPU()
}

// endSection stops the timer and reports the section's CPU time.
func (m cpuMeter) endSection(b *testing.B) {
	b.StopTimer()
	m.report(b)
}

// awaitConsumed waits until the consumer closes done, having seen b.N
// messages.
func awaitConsumed(b *testing.B, done <-chan struct{}, got *atomic.Int64) {
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("consumed %d of %d", got.Load(), b.N)
	}
}

// runConcurrent runs send b.N times spread over g goroutines.
func runConcurrent(b *testing.B, g int, send func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for i := 0; i < g; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := send(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func BenchmarkSendSync(b *testing.B) {
	broker := rocketmqtest.NewTest(b, rocketmqtest.Config{})
	raw := newRawProducer(b, broker)
	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{broker.NameServerAddr()}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pub.Close() })

	// Each run gets a new topic, created and routed before the timer starts
	// and deleted after it stops, so the broker's heap (and the GC work it
	// causes) does not grow from one run to the next and favour whichever
	// side runs first.
	withTopic := func(b *testing.B, g int, warmUp func(topic string) error, send func(topic string) error) {
		topic := "bench-send-" + watermill.NewShortUUID()
		if err := warmUp(topic); err != nil {
			b.Fatal(err)
		}
		cpu := startSection(b)
		runConcurrent(b, g, func() error { return send(topic) })
		cpu.endSection(b)
		broker.DeleteTopic(topic)
	}
	rawSend := func(topic string) error {
		res, err := raw.SendSync(context.Background(), primitive.NewMessage(topic, benchPayload))
		if err == nil && res.Status != primitive.SendOK {
			err = fmt.Errorf("status %d", res.Status)
		}
		return err
	}
	adapterSend := func(topic string) error {
		return pub.Publish(topic, message.NewMessage(watermill.NewUUID(), benchPayload))
	}
	for _, g := range []int{1, 8} {
		b.Run(fmt.Sprintf("adapter/goroutines=%d", g), func(b *testing.B) {
			withTopic(b, g, adapterSend, adapterSend)
		})
		b.Run(fmt.Sprintf("raw/goroutines=%d", g), func(b *testing.B) {
			withTopic(b, g, rawSend, rawSend)
		})
	}
}

// fillTopic stores n messages in a new topic through batches, as setup.
func fillTopic(b *testing.B, broker *rocketmqtest.Broker, pub *rocketmq.Publisher, n int) string {
	b.Helper()
	topic := "bench-consume-" + watermill.NewShortUUID()
	const batch = 256
	for sent := 0; sent < n; sent += batch {
		k := min(batch, n-sent)
		msgs := make([]*message.Message, k)
		for i := range msgs {
			msgs[i] = message.NewMessage(watermill.NewUUID(), benchPayload)
		}
		if err := pub.Publish(topic, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	// Keep the broker's heap (and so the GC cost) from growing across runs.
	b.Cleanup(func() { broker.DeleteTopic(topic) })
	return topic
}

// The raw consumer runs at the client's defaults: 20 consume goroutines, one
// message per consume call, so each message gets its own verdict, as each
// gets its own ack or nack from the adapter (whose default ConsumeBatch hands
// it the client's whole pull batch, up to 32 messages, per call, delivered
// one at a time). The raw_batch variant gives the raw client the adapter's
// batch, with one verdict per call.
const consumeGoroutines = 20

// BenchmarkConsume measures draining a filled topic. The timer covers
// starting the consumer and every delivery; what a subscription does once,
// before it consumes (creating its group's retry topic, or for the raw client
// creating the consumer), happens before the timer starts, on both sides.
func BenchmarkConsume(b *testing.B) {
	broker := rocketmqtest.NewTest(b, rocketmqtest.Config{LongPollHold: 200 * time.Millisecond})
	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{broker.NameServerAddr()}, Batch: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pub.Close() })

	raw := func(b *testing.B, batch int) {
		topic := fillTopic(b, broker, pub, b.N)
		var got atomic.Int64
		done := make(chan struct{})
		c, err := rmq.NewPushConsumer(
			consumer.WithNameServer([]string{broker.NameServerAddr()}),
			consumer.WithGroupName("raw-cg-"+watermill.NewShortUUID()),
			consumer.WithInstance("raw-c-"+watermill.NewShortUUID()),
			consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
			consumer.WithConsumeGoroutineNums(consumeGoroutines),
			consumer.WithConsumeMessageBatchMaxSize(batch),
		)
		if err != nil {
			b.Fatal(err)
		}
		err = c.Subscribe(topic, consumer.MessageSelector{}, func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			if got.Add(int64(len(msgs))) == int64(b.N) {
				close(done)
			}
			return consumer.ConsumeSuccess, nil
		})
		if err != nil {
			b.Fatal(err)
		}
		cpu := startSection(b)
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		awaitConsumed(b, done, &got)
		cpu.endSection(b)
		_ = c.Shutdown()
	}
	b.Run("raw", func(b *testing.B) { raw(b, 1) })

	// One reader that acks at once, as the raw callback returns at once.
	adapter := func(b *testing.B, batch int) {
		topic := fillTopic(b, broker, pub, b.N)
		sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{
			NameServers:       []string{broker.NameServerAddr()},
			ConsumerGroup:     "cg-" + watermill.NewShortUUID(),
			ConsumeGoroutines: consumeGoroutines,
			ConsumeBatch:      batch,
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := sub.SubscribeInitialize(topic); err != nil {
			b.Fatal(err)
		}
		var got atomic.Int64
		done := make(chan struct{})
		cpu := startSection(b)
		msgs, err := sub.Subscribe(context.Background(), topic)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for m := range msgs {
				m.Ack()
				if got.Add(1) == int64(b.N) {
					close(done)
				}
			}
		}()
		awaitConsumed(b, done, &got)
		cpu.endSection(b)
		_ = sub.Close()
	}
	b.Run("adapter", func(b *testing.B) { adapter(b, 0) })
	b.Run("raw_batch", func(b *testing.B) { raw(b, rocketmq.DefaultConsumeBatch) })
	// The adapter with 8 messages per consume call, its default before
	// SplitAfter: what smaller calls cost (docs/benchmarks.md).
	b.Run("adapter_batch8", func(b *testing.B) { adapter(b, 8) })
}
