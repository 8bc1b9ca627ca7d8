package metrics_test

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/metrics"
)

// gatePublisher blocks publishes of the message "block" until the gate
// opens, and fails those of the message "fail".
type gatePublisher struct {
	*fakepub.Publisher
	started chan struct{}
	gate    chan struct{}
}

func newGatePublisher() *gatePublisher {
	p := &gatePublisher{started: make(chan struct{}, 10), gate: make(chan struct{})}
	p.Publisher = &fakepub.Publisher{Func: func(_ string, msgs []*message.Message) error {
		if msgs[0].UUID == "block" {
			p.started <- struct{}{}
			<-p.gate
		}
		if msgs[0].UUID == "fail" {
			return errBrokerDown
		}
		return nil
	}}
	return p
}

func TestWatchAsync_reports_queue_depth_rejections_and_caller_runs_of_all_pools(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})

	rejInner := newGatePublisher()
	rej, err := async.NewPublisher(rejInner, async.Config{CoreWorkers: 1, MaxWorkers: 1, QueueCapacity: 1, FullPolicy: async.Reject}, nil)
	if err != nil {
		t.Fatal(err)
	}
	crInner := newGatePublisher()
	cr, err := async.NewPublisher(crInner, async.Config{CoreWorkers: 1, MaxWorkers: 1, QueueCapacity: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WatchAsync(rej); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchAsync(cr); err != nil {
		t.Fatal(err)
	}

	// Each pool: the worker blocks on the first call, the second waits in
	// the queue, the third finds the queue full.
	for _, p := range []struct {
		pub   *async.Publisher
		inner *gatePublisher
	}{{rej, rejInner}, {cr, crInner}} {
		if err := p.pub.Publish("t", message.NewMessage("block", nil)); err != nil {
			t.Fatal(err)
		}
		<-p.inner.started
		if err := p.pub.Publish("t", message.NewMessage("fail", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rej.Publish("t", message.NewMessage("r", nil)); !errors.Is(err, async.ErrQueueFull) {
		t.Fatalf("Reject pool: err = %v, want ErrQueueFull", err)
	}
	if err := cr.Publish("t", message.NewMessage("c", nil)); err != nil {
		t.Fatalf("CallerRuns pool: %v", err)
	}
	wantValue(t, reg, 2, "reliamq_async_queue_depth")
	wantValue(t, reg, 2, "reliamq_async_in_flight")
	wantValue(t, reg, 2, "reliamq_async_workers")
	wantValue(t, reg, 1, "reliamq_async_rejections_total")
	wantValue(t, reg, 1, "reliamq_async_caller_runs_total")

	close(rejInner.gate)
	close(crInner.gate)
	if err := rej.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cr.Close(); err != nil {
		t.Fatal(err)
	}
	// Sent: two "block" and the caller-run "c"; failed: two "fail".
	wantValue(t, reg, 3, "reliamq_async_sends_total", "outcome", "accepted")
	wantValue(t, reg, 2, "reliamq_async_sends_total", "outcome", "error")
	wantValue(t, reg, 0, "reliamq_async_queue_depth")
	wantValue(t, reg, 0, "reliamq_async_workers")
	wantValue(t, reg, 0, "reliamq_async_leftovers_total")
	lint(t, reg)
}

func TestWatchAsync_reports_the_saturation_of_the_fullest_pool_and_the_limits(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	busyInner := newGatePublisher()
	busy, err := async.NewPublisher(busyInner, async.Config{CoreWorkers: 1, MaxWorkers: 1, QueueCapacity: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	idle, err := async.NewPublisher(newGatePublisher(), async.Config{CoreWorkers: 1, MaxWorkers: 3, QueueCapacity: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*async.Publisher{busy, idle} {
		if err := m.WatchAsync(p); err != nil {
			t.Fatal(err)
		}
	}
	wantValue(t, reg, 0, "reliamq_async_queue_fill_ratio")

	// The worker blocks on "block"; two more calls wait in a queue of 4.
	if err := busy.Publish("t", message.NewMessage("block", nil)); err != nil {
		t.Fatal(err)
	}
	<-busyInner.started
	for _, id := range []string{"q1", "q2"} {
		if err := busy.Publish("t", message.NewMessage(id, nil)); err != nil {
			t.Fatal(err)
		}
	}
	wantValue(t, reg, 0.5, "reliamq_async_queue_fill_ratio")
	wantValue(t, reg, 2, "reliamq_async_queue_depth")
	wantValue(t, reg, 14, "reliamq_async_queue_capacity")
	wantValue(t, reg, 4, "reliamq_async_max_workers")

	close(busyInner.gate)
	for _, p := range []*async.Publisher{busy, idle} {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	wantValue(t, reg, 0, "reliamq_async_queue_fill_ratio")
	lint(t, reg)
}
