package async_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

type noopPublisher struct{}

func (noopPublisher) Publish(string, ...*message.Message) error { return nil }
func (noopPublisher) Close() error                              { return nil }

// bare is a package variable so the compiler can not devirtualize and inline
// the call: the bare variant pays the interface call every decorator pays.
var bare message.Publisher = noopPublisher{}

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
		p, err := async.NewPublisher(noopPublisher{}, async.Config{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = p.Close()
		b.StartTimer()
	}
}
