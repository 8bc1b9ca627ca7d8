package async_test

import (
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/benchmeter"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

// bare is the no-op publisher every variant sends to. fakepub.Nop is a
// variable of interface type, so the compiler can not devirtualize and
// inline the call: the bare variant pays the interface call every decorator
// pays.
var bare = fakepub.Nop

// BenchmarkPublisher_success_path measures one Publish on the success path
// through a no-op publisher, bare, behind retry, and behind async(retry). The
// async variants include Close, which drains the queue, so msg/s counts
// messages actually sent, not just queued.
func BenchmarkPublisher_success_path(b *testing.B) {
	newRetry := func(b *testing.B) message.Publisher {
		p, err := retry.NewPublisher(bare, retry.Config{Policy: policy.RocketMQ()}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	newAsync := func(b *testing.B) *async.Publisher {
		p, err := async.NewPublisher(newRetry(b), async.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	report := func(b *testing.B, start time.Time) {
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
	}

	b.Run("bare", func(b *testing.B) {
		pub := bare
		msg := message.NewMessage("bench", []byte("payload"))
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := pub.Publish("bench", msg); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start)
	})
	b.Run("retry", func(b *testing.B) {
		pub := newRetry(b)
		msg := message.NewMessage("bench", []byte("payload"))
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := pub.Publish("bench", msg); err != nil {
				b.Fatal(err)
			}
		}
		report(b, start)
	})
	b.Run("async_retry", func(b *testing.B) {
		pub := newAsync(b)
		msg := message.NewMessage("bench", []byte("payload"))
		if err := pub.Publish("bench", msg); err != nil { // starts a worker, detaches msg
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if err := pub.Publish("bench", msg); err != nil {
				b.Fatal(err)
			}
		}
		if err := pub.Close(); err != nil {
			b.Fatal(err)
		}
		report(b, start)
	})
	b.Run("async_retry_parallel", func(b *testing.B) {
		pub := newAsync(b)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			msg := message.NewMessage("bench", []byte("payload"))
			for pb.Next() {
				if err := pub.Publish("bench", msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
		if err := pub.Close(); err != nil {
			b.Fatal(err)
		}
		report(b, start)
	})
}

func BenchmarkNewPublisher(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p, err := async.NewPublisher(bare, async.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = p.Close()
		b.StartTimer()
	}
}

// chanPool is the baseline of BenchmarkAsync_vs_channel_pool: the worker
// pool one writes by hand, a buffered channel drained by a fixed number of
// workers into the inner publisher. With check set, Publish first refuses
// a bad message with pkg/msgcheck, as every reliamq publisher does (the
// contract: bad input is refused at once, on the caller's goroutine); nothing
// else (no results, no counters, no back-pressure policy, no close timeout,
// no guarantee for a Publish racing Close).
type chanPool struct {
	inner message.Publisher
	check bool
	queue chan chanTask
	wg    sync.WaitGroup
}

type chanTask struct {
	topic string
	msgs  []*message.Message
}

func newChanPool(inner message.Publisher, workers, capacity int, check bool) *chanPool {
	c := &chanPool{inner: inner, check: check, queue: make(chan chanTask, capacity)}
	c.wg.Add(workers)
	for range workers {
		go func() {
			defer c.wg.Done()
			for t := range c.queue {
				_ = c.inner.Publish(t.topic, t.msgs...)
			}
		}()
	}
	return c
}

func (c *chanPool) Publish(topic string, msgs ...*message.Message) error {
	if c.check {
		if err := msgcheck.Messages(msgs); err != nil {
			return err
		}
	}
	c.queue <- chanTask{topic: topic, msgs: msgs}
	return nil
}

func (c *chanPool) Close() error {
	close(c.queue)
	c.wg.Wait()
	return c.inner.Close()
}

// BenchmarkAsync_vs_channel_pool compares, in one run, async.Publisher with
// the hand-written channel pool (chanPool) of the same queue capacity and the
// same number of workers, both into the same no-op publisher (fakepub.Nop),
// with 1 and 8 producer goroutines. One op is one message published and
// sent: the timed section ends when Close has drained the queue. Variants:
//
//   - channel: chanPool with the message check, DefaultCoreWorkers workers,
//     DefaultQueueCapacity: the reference, doing the work the contract
//     requires of every reliamq publisher and nothing more.
//   - channel_nocheck: the same without the message check, to show its cost.
//   - async: async.Config{} (10 core, 50 max, 200 queued, CallerRuns).
//   - async_max10: MaxWorkers = CoreWorkers = 10, CallerRuns: as many
//     workers as channel, never more.
//   - async_block: the same with Block, the channel's shape: a producer
//     waits for room.
//
// Besides ns/op it reports msg/s and the process's CPU time per message
// (cpu-ns/op), which other load on a shared machine disturbs less than wall
// time. Compare them run by run (scripts/bench-rounds, docs/benchmarks.md).
func BenchmarkAsync_vs_channel_pool(b *testing.B) {
	newAsync := func(b *testing.B, cfg async.Config) message.Publisher {
		p, err := async.NewPublisher(bare, cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	for _, producers := range []int{1, 8} {
		b.Run(fmt.Sprintf("producers=%d/channel", producers), func(b *testing.B) {
			runProducers(b, producers, newChanPool(bare, async.DefaultCoreWorkers, async.DefaultQueueCapacity, true))
		})
		b.Run(fmt.Sprintf("producers=%d/channel_nocheck", producers), func(b *testing.B) {
			runProducers(b, producers, newChanPool(bare, async.DefaultCoreWorkers, async.DefaultQueueCapacity, false))
		})
		b.Run(fmt.Sprintf("producers=%d/async", producers), func(b *testing.B) {
			runProducers(b, producers, newAsync(b, async.Config{}))
		})
		b.Run(fmt.Sprintf("producers=%d/async_max10", producers), func(b *testing.B) {
			runProducers(b, producers, newAsync(b, async.Config{
				CoreWorkers: async.DefaultCoreWorkers, MaxWorkers: async.DefaultCoreWorkers,
			}))
		})
		b.Run(fmt.Sprintf("producers=%d/async_block", producers), func(b *testing.B) {
			runProducers(b, producers, newAsync(b, async.Config{
				CoreWorkers: async.DefaultCoreWorkers, MaxWorkers: async.DefaultCoreWorkers, FullPolicy: async.Block,
			}))
		})
	}
}

// runProducers publishes b.N messages into pub from producers goroutines,
// each with a message of its own, then closes pub.
func runProducers(b *testing.B, producers int, pub message.Publisher) {
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	meter := benchmeter.Start()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range producers {
		n := b.N / producers
		if i < b.N%producers {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := message.NewMessage("bench-"+strconv.Itoa(i), []byte("payload"))
			for range n {
				if err := pub.Publish("bench", msg); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := pub.Close(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	cpu, ok := meter.Stop()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	if ok {
		b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	}
}
