package redelivery_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
)

func TestMain(m *testing.M) {
	rocketmqtest.VerifyNoLeaks(m,
		// The Redis subscriber's read loop sleeps 500 ms after the error its
		// closed client returns before it sees Close: not our goroutine.
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream.(*Subscriber).read"))
}

// delivery is what a test handler saw.
type delivery struct {
	UUID      string
	Reconsume string
	At        time.Time
	Metadata  message.Metadata
}

// hookRecorder implements every hook and forwards events to channels.
type hookRecorder struct {
	scheduled   chan redelivery.ScheduledParams
	redelivered chan redelivery.RedeliveredParams
	deadLetter  chan redelivery.DeadLetterParams
	dropped     chan redelivery.DroppedParams
}

func newHookRecorder() *hookRecorder {
	return &hookRecorder{
		scheduled:   make(chan redelivery.ScheduledParams, 1000),
		redelivered: make(chan redelivery.RedeliveredParams, 1000),
		deadLetter:  make(chan redelivery.DeadLetterParams, 1000),
		dropped:     make(chan redelivery.DroppedParams, 1000),
	}
}

func (h *hookRecorder) OnRedeliveryScheduled(p redelivery.ScheduledParams) { h.scheduled <- p }
func (h *hookRecorder) OnRedelivered(p redelivery.RedeliveredParams)       { h.redelivered <- p }
func (h *hookRecorder) OnDeadLettered(p redelivery.DeadLetterParams)       { h.deadLetter <- p }
func (h *hookRecorder) OnDropped(p redelivery.DroppedParams)               { h.dropped <- p }

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// rig is a gochannel pub/sub, a router and one Redelivery with the in-memory
// scheduler unless cfg names another.
type rig struct {
	ps     *gochannel.GoChannel
	r      *redelivery.Redelivery
	router *message.Router
	dlq    <-chan *message.Message
}

func newRig(t *testing.T, cfg redelivery.Config, topic string, h message.NoPublishHandlerFunc) *rig {
	t.Helper()
	ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	cfg.Publisher = ps
	if cfg.Scheduler == nil {
		cfg.Scheduler = redelivery.NewInMemory(redelivery.InMemoryConfig{})
	}
	r, err := redelivery.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddConsumerHandler(router, topic, ps, h); err != nil {
		t.Fatal(err)
	}
	dlq, err := ps.Subscribe(context.Background(), r.Config().DeadLetterTopic)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	<-router.Running()
	t.Cleanup(func() {
		_ = router.Close()
		cancel()
		<-done
		_ = r.Close()
		_ = ps.Close()
	})
	return &rig{ps: ps, r: r, router: router, dlq: dlq}
}

// recorder collects deliveries from any goroutine.
type recorder struct {
	mu  sync.Mutex
	got []delivery
	ch  chan delivery
}

func newRecorder() *recorder { return &recorder{ch: make(chan delivery, 10000)} }

func (rec *recorder) record(msg *message.Message, at time.Time) {
	d := delivery{UUID: msg.UUID, Reconsume: msg.Metadata.Get(metadata.ReconsumeTimes), At: at, Metadata: copyMD(msg.Metadata)}
	rec.mu.Lock()
	rec.got = append(rec.got, d)
	rec.mu.Unlock()
	rec.ch <- d
}

// markKey is where subscriberScheduler marks a delivery with its delay.
const markKey = "test_retry_delay"

// subscriberScheduler routes BySubscriber, as a broker's native scheduler
// does (RocketMQ's): it marks the failed delivery with the delay, rounded up
// to whole seconds as a broker with delay steps would, and keeps what it
// was given.
type subscriberScheduler struct {
	route redelivery.Route // BySubscriber when 0

	mu     sync.Mutex
	target redelivery.Target
	got    []redelivery.Scheduled
	closed bool
}

func (s *subscriberScheduler) Route() redelivery.Route {
	if s.route == 0 {
		return redelivery.BySubscriber
	}
	return s.route
}

func (s *subscriberScheduler) Open(t redelivery.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target = t
	return nil
}

func (s *subscriberScheduler) Schedule(_ context.Context, sc redelivery.Scheduled) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, redelivery.ErrClosed
	}
	s.got = append(s.got, sc)
	wait := (sc.Delay + time.Second - 1).Truncate(time.Second)
	sc.Message.Metadata.Set(markKey, wait.String())
	return wait, nil
}

func (s *subscriberScheduler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *subscriberScheduler) scheduled() []redelivery.Scheduled {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]redelivery.Scheduled(nil), s.got...)
}

func copyMD(md message.Metadata) message.Metadata {
	out := make(message.Metadata, len(md))
	for k, v := range md {
		out[k] = v
	}
	return out
}
