//go:build !race

package rocketmqtest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

// BenchmarkSendSync measures SendSync throughput of the real client against
// the embedded broker with 1 KiB bodies, at several numbers of concurrent
// senders sharing one producer.
func BenchmarkSendSync(b *testing.B) {
	body := make([]byte, 1024)
	for _, g := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("goroutines=%d", g), func(b *testing.B) {
			br := rocketmqtest.NewTest(b, rocketmqtest.Config{})
			p := newProducer(b, br)
			topic := uniqueName("bench")
			if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, body)); err != nil {
				b.Fatalf("warm-up send: %v", err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var failed atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for w := 0; w < g; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, body)); err != nil {
							failed.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if f := failed.Load(); f > 0 {
				b.Fatalf("%d sends failed", f)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

// BenchmarkProduceConsume measures push consumption through the real
// client: "prefilled" consumes b.N messages already stored; "end_to_end"
// sends b.N messages from 8 goroutines while a consumer receives them, and
// stops when the last one arrives.
func BenchmarkProduceConsume(b *testing.B) {
	body := make([]byte, 1024)
	consume := func(b *testing.B, br *rocketmqtest.Broker, topic string, want int) (*sync.WaitGroup, *atomic.Int64) {
		var got atomic.Int64
		var done sync.WaitGroup
		done.Add(1)
		var once sync.Once
		startConsumer(b, br, consumerOpts{
			group: uniqueName("bg"), topic: topic,
			opts: []consumer.Option{consumer.WithConsumeMessageBatchMaxSize(32)},
			handler: func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				if got.Add(int64(len(msgs))) >= int64(want) {
					once.Do(done.Done)
				}
				return consumer.ConsumeSuccess, nil
			},
		})
		return &done, &got
	}

	b.Run("prefilled", func(b *testing.B) {
		br := rocketmqtest.NewTest(b, rocketmqtest.Config{})
		p := newProducer(b, br)
		topic := uniqueName("bench")
		batch := make([]*primitive.Message, 0, 64)
		for i := 0; i < b.N; i++ {
			batch = append(batch, primitive.NewMessage(topic, body))
			if len(batch) == cap(batch) || i == b.N-1 {
				if _, err := p.SendSync(context.Background(), batch...); err != nil {
					b.Fatalf("prefill: %v", err)
				}
				batch = batch[:0]
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		done, _ := consume(b, br, topic, b.N)
		done.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	})

	b.Run("end_to_end", func(b *testing.B) {
		br := rocketmqtest.NewTest(b, rocketmqtest.Config{})
		p := newProducer(b, br)
		topic := uniqueName("bench")
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, body)); err != nil {
			b.Fatalf("warm-up send: %v", err)
		}
		done, _ := consume(b, br, topic, b.N+1)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(b.N) {
					if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, body)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		done.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	})
}
