package redelivery_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/uuid"

	"github.com/reliamq/reliamq/internal/benchmeter"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/internal/transporttest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// benchBatch is the messages published per benchmark operation; 1 % of them
// fail once, and their next attempt comes 1 s later.
const (
	benchBatch    = 1000
	benchFailEach = 100
	benchDelay    = time.Second
)

// consumerVariant installs one way of handling failures on a router.
type consumerVariant struct {
	name    string
	failing bool
	install func(b *testing.B, router *message.Router, topic string, pub message.Publisher, sub message.Subscriber, h message.NoPublishHandlerFunc) func()
}

func consumerVariants(newScheduler func() redelivery.Scheduler) []consumerVariant {
	plain := func(b *testing.B, router *message.Router, topic string, _ message.Publisher, sub message.Subscriber, h message.NoPublishHandlerFunc) func() {
		router.AddConsumerHandler("h", topic, sub, h)
		return func() {}
	}
	reliamq := func(b *testing.B, router *message.Router, topic string, pub message.Publisher, sub message.Subscriber, h message.NoPublishHandlerFunc) func() {
		r, err := redelivery.New(redelivery.Config{
			ConsumerGroup: "bench", Handler: "h", Scheduler: newScheduler(), Publisher: pub,
			Policy: policy.Policy{MaxAttempts: 17, Backoff: policy.Table(benchDelay, 2*benchDelay)},
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.AddConsumerHandler(router, topic, sub, h); err != nil {
			b.Fatal(err)
		}
		return func() { _ = r.Close() }
	}
	return []consumerVariant{
		{name: "no_failures", install: plain},
		// A control, not a way of handling failures: the plain handler
		// writing the one metadata key the middleware writes on every
		// delivery (the reconsume count). On a message without metadata that
		// first write allocates the map's storage.
		{name: "plain_one_metadata_write", install: func(b *testing.B, router *message.Router, topic string, pub message.Publisher, sub message.Subscriber, h message.NoPublishHandlerFunc) func() {
			return plain(b, router, topic, pub, sub, func(msg *message.Message) error {
				msg.Metadata.Set(metadata.ReconsumeTimes, "0")
				return h(msg)
			})
		}},
		// The middleware installed but nothing failing: its cost on every
		// healthy message, apart from what the failures cost.
		{name: "reliamq_no_failures", install: reliamq},
		{name: "reliamq_redelivery", failing: true, install: reliamq},
		{name: "watermill_retry_poison", failing: true, install: func(b *testing.B, router *message.Router, topic string, pub message.Publisher, sub message.Subscriber, h message.NoPublishHandlerFunc) func() {
			poison, err := middleware.PoisonQueue(pub, "bench_poison")
			if err != nil {
				b.Fatal(err)
			}
			retry := middleware.Retry{MaxRetries: 16, InitialInterval: benchDelay, Multiplier: 2, MaxInterval: 2 * time.Hour}
			hh := router.AddConsumerHandler("h", topic, sub, h)
			hh.AddMiddleware(poison, retry.Middleware)
			return func() {}
		}},
	}
}

// runConsumerBenchmark publishes benchBatch messages per operation through
// newPubSub's serial subscription and reports healthy messages per second.
func runConsumerBenchmark(b *testing.B, v consumerVariant, newPubSub func(b *testing.B) (message.Publisher, message.Subscriber)) {
	pub, sub := newPubSub(b)
	topic := "bench_" + uuid.NewString()[:8]
	var healthy atomic.Int64
	errFail := errors.New("fails once")
	// A marked message fails on its first delivery only. The handler keeps
	// no state of its own (a set of the failed UUIDs would grow for the whole
	// run and make every garbage collection of the failing variants slower):
	// Watermill's Retry calls it again with the same message, which carries
	// the mark it set; reliamq's redelivery carries it in the copy, or (in
	// the native scheduler, where the broker resends the stored message) a reconsume
	// count above 0.
	h := func(msg *message.Message) error {
		if msg.Metadata.Get("fail") == "1" {
			if rt := msg.Metadata.Get(metadata.ReconsumeTimes); msg.Metadata.Get("failed") == "" && (rt == "" || rt == "0") {
				msg.Metadata.Set("failed", "1")
				return errFail
			}
			return nil
		}
		healthy.Add(1)
		return nil
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 30 * time.Second}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	closeVariant := v.install(b, router, topic, pub, sub, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	<-router.Running()
	defer func() { _ = router.Close(); cancel(); <-done; closeVariant() }()

	var wantHealthy int64
	batch := func() {
		msgs := make([]*message.Message, benchBatch)
		for j := range msgs {
			msgs[j] = message.NewMessage(uuid.NewString(), []byte(`{}`))
			if v.failing && j%benchFailEach == benchFailEach/2 {
				msgs[j].Metadata.Set("fail", "1")
			} else {
				wantHealthy++
			}
		}
		if err := pub.Publish(topic, msgs...); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Minute)
		for healthy.Load() < wantHealthy {
			if time.Now().After(deadline) {
				b.Fatalf("healthy %d of %d", healthy.Load(), wantHealthy)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	// Warm up for longer than the first delay, so the timed batches run in
	// the steady state where earlier failures come back through the retry
	// topic while new ones fail; without it a one-second run would time
	// almost none of the retries. Every variant warms up alike.
	for warm := time.Now(); time.Since(warm) < benchDelay+benchDelay/5; {
		batch()
	}
	healthy.Store(0)
	wantHealthy = 0

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	meter := benchmeter.Start()
	for i := 0; i < b.N; i++ {
		batch()
	}
	cpu, cpuOK := meter.Stop()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(wantHealthy)/elapsed.Seconds(), "healthy-msgs/s")
	if cpuOK {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(wantHealthy), "cpu-ns/healthy-msg")
	}
}

// BenchmarkConsumer_healthy_throughput_with_1pct_failing compares, on a
// serial gochannel subscription (the next message only after the previous
// ack, as a broker queue delivers), the throughput of healthy messages when
// 1 % fail once with a 1 s first delay: reliamq redelivery vs Watermill's
// Retry+PoisonQueue, and both vs no failures at all.
func BenchmarkConsumer_healthy_throughput_with_1pct_failing(b *testing.B) {
	for _, v := range consumerVariants(func() redelivery.Scheduler { return redelivery.NewInMemory(redelivery.InMemoryConfig{}) }) {
		b.Run("gochannel/"+v.name, func(b *testing.B) {
			runConsumerBenchmark(b, v, func(b *testing.B) (message.Publisher, message.Subscriber) {
				ps := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
				b.Cleanup(func() { _ = ps.Close() })
				return ps, transporttest.KeepOpen(ps)
			})
		})
	}
}

// BenchmarkInMemory_memory_per_waiting_message fills the in-memory timer heap
// with 1,000,000 failed messages (UUID, no payload, the metadata the
// middleware adds) and reports the heap growth per waiting message.
func BenchmarkInMemory_memory_per_waiting_message(b *testing.B) {
	const n = 1_000_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r, err := redelivery.New(redelivery.Config{ConsumerGroup: "billing", Handler: "charge", Scheduler: redelivery.NewInMemory(redelivery.InMemoryConfig{}),
			Publisher: fakepub.Nop, Policy: policy.Policy{MaxAttempts: 17, Backoff: policy.Fixed(time.Hour)}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		h := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("payment service down") })
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for j := 0; j < n; j++ {
			msg := message.NewMessage(uuid.NewString(), nil)
			msg.Metadata.Set(metadata.Tags, "order")
			if _, err := h(msg); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if w := r.Stats().Waiting; w != n {
			b.Fatalf("waiting %d", w)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/waiting-msg")
		runtime.KeepAlive(r)
		_ = r.Close()
	}
}
