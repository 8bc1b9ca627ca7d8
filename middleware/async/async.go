package async

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/middleware/journal"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

var _ message.Publisher = (*Publisher)(nil)

var (
	// ErrInvalidConfig matches every error NewPublisher returns for a bad
	// Config or a nil inner publisher.
	ErrInvalidConfig = errors.New("async: invalid config")
	// ErrClosed is returned by Publish once Close has started. It also
	// matches policy.ErrClosed.
	ErrClosed = policy.NewClosedError("async: publisher closed")
	// ErrQueueFull is returned by Publish under the Reject policy when the
	// queue is full and no worker can take the call. The messages were not
	// taken.
	ErrQueueFull = errors.New("async: queue full")
	// ErrNotSent matches the Result.Err of a Publish call that Close could
	// neither send in time nor hand to Leftovers, and the error Close returns
	// when there was at least one.
	ErrNotSent = errors.New("async: not sent before close")
)

// closedBit is set in the gate counter once Close has started; the bits
// below count the Publish calls inside the gate.
const closedBit = 1 << 62

// Publisher sends messages through an inner publisher on a bounded pool of
// worker goroutines; Publish returns as soon as the call is queued. See the
// package documentation for the delivery guarantees. It is safe for
// concurrent use.
//
// Publish and Close meet at the gate, one counter: Publish enters it (one
// atomic add) before it may send on the queue or start a worker, and leaves
// it after. Close sets closedBit, so later calls turn back with ErrClosed,
// waits until the calls inside have left, and only then closes the queue:
// no call is ever sent on a closed queue, and every call that got in is
// queued before the workers drain the queue for the last time. A call the
// caller sends itself (CallerRuns) passes the callers counter instead, which
// Close closes the same way and waits on, with the workers, up to
// CloseTimeout.
type Publisher struct {
	// Set by NewPublisher, read-only after: every call reads them, so they
	// share no cache line with the counters (see counters).
	inner   message.Publisher
	cfg     Config
	results []ResultHook
	logger  watermill.LoggerAdapter
	// queue holds the calls waiting for a worker.
	queue    chan task
	gateIdle chan struct{} // closed when the gate is closed and empty
	closing  chan struct{} // closed when Close starts: wakes blocked Publish calls
	idle     chan struct{} // capacity 1: wakes Close to look at workers and callers
	// runCtx is the context of every message sent by a worker (see detach);
	// cancelled when CloseTimeout runs out, which also sets aborted.
	runCtx    context.Context
	cancelRun context.CancelFunc

	// Written by Close (workersWG also when a worker starts or ends).
	aborted   atomic.Bool
	sealed    atomic.Bool // queue closed: the last worker to exit pokes idle
	gateOnce  sync.Once
	workersWG sync.WaitGroup // for Close: no worker goroutine is left
	closeOnce sync.Once
	closeErr  error

	journal *journal.Publisher // Config.Journal: Publish and Close go to it
	n       counters
}

// NewPublisher decorates inner with a worker pool configured by cfg. A nil
// logger becomes watermill.NopLogger. Errors match ErrInvalidConfig.
func NewPublisher(inner message.Publisher, cfg Config, logger watermill.LoggerAdapter) (*Publisher, error) {
	if err := errors.Join(nilcheck.Required(ErrInvalidConfig, "inner publisher", inner), nilcheck.Optional(ErrInvalidConfig, "Leftovers", cfg.Leftovers),
		nilcheck.Optional(ErrInvalidConfig, "Clock", cfg.Clock)); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	if cfg.Journal != nil {
		j, err := journal.New(inner, *cfg.Journal, logger)
		if err != nil {
			return nil, fmt.Errorf("%w: Journal: %w", ErrInvalidConfig, err)
		}
		return &Publisher{inner: inner, cfg: cfg, logger: logger, journal: j}, nil
	}
	runCtx, cancel := context.WithCancel(context.Background())
	return &Publisher{
		inner:     inner,
		cfg:       cfg,
		results:   hooks.Of[ResultHook](cfg.Hooks),
		logger:    logger.With(watermill.LogFields{"component": "reliamq.async"}),
		queue:     make(chan task, cfg.QueueCapacity),
		gateIdle:  make(chan struct{}),
		closing:   make(chan struct{}),
		idle:      make(chan struct{}, 1),
		runCtx:    runCtx,
		cancelRun: cancel,
	}, nil
}

// PublisherDecorator returns a message.PublisherDecorator that wraps a
// publisher with NewPublisher(pub, cfg, logger).
func PublisherDecorator(cfg Config, logger watermill.LoggerAdapter) message.PublisherDecorator {
	return func(pub message.Publisher) (message.Publisher, error) {
		return NewPublisher(pub, cfg, logger)
	}
}

// Publish queues the call for a worker and returns nil at once. The messages
// and the msgs slice belong to the publisher from then on: do not modify them.
//
// The context of each queued message is replaced by one that keeps its values
// but not its cancellation or deadline: the caller's context usually ends as
// soon as Publish returns (an HTTP handler's request context, for example),
// and the send must outlive it. Only Close's timeout cancels a queued send.
//
// A message that breaks the rules every reliamq publisher shares (nil, an
// empty or invalid UUID, invalid metadata: see pkg/msgcheck) is refused at
// once with a permanent error matching the msgcheck sentinel, and nothing of
// the call is queued.
//
// When the queue is full, an extra worker takes the call if one may start
// (see Config.MaxWorkers); otherwise FullPolicy decides: CallerRuns sends on
// this goroutine with the message's own context and returns the send's
// error; Block waits for room (see Block); Reject returns ErrQueueFull.
// After Close has started, Publish returns ErrClosed.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.journal != nil {
		return p.journal.Publish(topic, msgs...)
	}
	if err := msgcheck.Messages(msgs); err != nil {
		// Refused now, on the caller's goroutine: queued, it could only fail
		// later, where the caller no longer hears of it.
		p.n.rejected.Add(1)
		return fmt.Errorf("async: publish to %q: %w", topic, err)
	}
	t := task{topic: topic, msgs: msgs}
	if p.cfg.FullPolicy == CallerRuns && len(p.queue) == cap(p.queue) && !p.extraWorkerHelps() {
		// Nothing will take the call (a hint, but a cheap one): skip the
		// gate and send it here.
		return p.callerRuns(t)
	}
	if p.n.gate.Add(1)&closedBit != 0 {
		p.leave()
		p.n.rejected.Add(1)
		return ErrClosed
	}
	if p.enqueue(t) {
		p.leave()
		return nil
	}
	switch p.cfg.FullPolicy {
	case Reject:
		p.leave()
		p.n.rejected.Add(1)
		return ErrQueueFull
	case Block:
		return p.block(t)
	}
	p.leave()
	return p.callerRuns(t)
}

// enqueue hands t to the pool without waiting: to the queue, or to a new
// extra worker when the queue is full. It reports false, with the messages
// as they were, when neither is possible.
func (p *Publisher) enqueue(t task) bool {
	// len is only a hint, but a cheap one: with a full queue (producers
	// outrunning the workers) the call skips detach and reattach.
	if len(p.queue) < cap(p.queue) {
		p.detach(t.msgs)
		select {
		case p.queue <- t:
			if p.n.workers.Load() < int64(p.cfg.CoreWorkers) && p.reserve(p.cfg.CoreWorkers) {
				p.startIdle()
			}
			return true
		default:
		}
		p.reattach(t.msgs)
	}
	if p.extraWorkerHelps() && p.reserve(p.cfg.MaxWorkers) {
		p.detach(t.msgs)
		p.startWith(t)
		return true
	}
	return false
}

// extraWorkerHelps reports whether a call that finds the queue full should
// start an extra worker, if one may start. A worker not busy sending takes
// the next queued call in a moment, so another worker would only add a
// goroutine, and the call waits (Block) or is sent by the caller
// (CallerRuns) instead. Under Reject the call would be refused: any worker
// that may start takes it.
func (p *Publisher) extraWorkerHelps() bool {
	w := p.n.workers.Load()
	if w >= int64(p.cfg.MaxWorkers) {
		return false
	}
	return p.cfg.FullPolicy == Reject || p.n.workerSends() >= w
}

// callerRuns sends t on the calling goroutine (CallerRuns). Caller-run
// sends have a gate of their own, the callers counter: a Close that starts
// meanwhile waits for the send (up to CloseTimeout), and one that has
// started refuses the call.
func (p *Publisher) callerRuns(t task) error {
	if p.n.callers.Add(1)&closedBit != 0 {
		p.callerLeave()
		p.n.rejected.Add(1)
		return ErrClosed
	}
	err := p.inner.Publish(t.topic, t.msgs...)
	p.report(Result{Topic: t.topic, Messages: t.msgs, Err: err, CallerRan: true})
	if err != nil {
		p.n.callerFailed.Add(1)
	} else {
		p.n.callerOK.Add(1)
	}
	// Counted out after the report, so a Close that waits for this send
	// returns after its hooks ran.
	p.callerLeave()
	return err
}

// callerLeave counts a caller-run send out; the last one after Close has
// started wakes Close.
func (p *Publisher) callerLeave() {
	if p.n.callers.Add(-1) == closedBit {
		p.poke()
	}
}

// block waits for room in the queue for t under the Block policy, inside the
// gate, and leaves it.
func (p *Publisher) block(t task) error {
	ctx := context.Background()
	if len(t.msgs) > 0 {
		ctx = t.msgs[0].Context()
	}
	p.detach(t.msgs)
	select {
	case p.queue <- t:
		p.leave()
		return nil
	case <-ctx.Done():
		p.leave()
		p.reattach(t.msgs)
		p.n.rejected.Add(1)
		return fmt.Errorf("async: waiting for room in the queue: %w", context.Cause(ctx))
	case <-p.closing:
		p.leave()
		p.reattach(t.msgs)
		p.n.rejected.Add(1)
		return ErrClosed
	}
}

// leave ends a Publish call's stay in the gate.
func (p *Publisher) leave() {
	if p.n.gate.Add(-1) == closedBit {
		p.gateOnce.Do(func() { close(p.gateIdle) })
	}
}

// poke wakes Close to look at the workers and callers again.
func (p *Publisher) poke() {
	select {
	case p.idle <- struct{}{}:
	default:
	}
}

// report runs the ResultHooks.
func (p *Publisher) report(r Result) {
	for _, h := range p.results {
		h.OnAsyncResult(r)
	}
}

// toLeftovers hands a call that was not sent to Leftovers, or reports it as
// not sent. sendErr is the error of a send cut off by the timeout, if any.
func (p *Publisher) toLeftovers(t task, sendErr error) {
	p.n.leftover.Add(1)
	p.release(t.msgs)
	var err error
	if p.cfg.Leftovers == nil {
		err = ErrNotSent
	} else if lerr := p.cfg.Leftovers.Publish(t.topic, t.msgs...); lerr != nil {
		err = fmt.Errorf("%w: leftovers publisher: %w", ErrNotSent, lerr)
	}
	if err != nil {
		if sendErr != nil {
			err = errors.Join(err, sendErr)
		}
		p.n.notSent.Add(1)
	}
	p.report(Result{Topic: t.topic, Messages: t.msgs, Err: err, Leftover: true})
}

// Close stops intake (Publish returns ErrClosed from now on), waits up to
// CloseTimeout for queued and in-flight calls, then cancels the sends still in
// flight and hands every call not sent to Leftovers (or reports it to the
// ResultHooks with ErrNotSent). It then closes the inner publisher, not
// Leftovers. When Close returns, none of the pool's goroutines is left. It
// returns an error matching ErrNotSent when some call was neither sent nor
// handed over, joined with the inner publisher's Close error. Later calls
// return the same result.
//
// A send that a caller runs itself (CallerRuns) is waited for like queued
// work, but not beyond CloseTimeout: it keeps the caller's context, so Close
// can not cancel it, and it may then fail against the closed inner publisher;
// its caller gets that error and the ResultHooks are told.
func (p *Publisher) Close() error {
	if p.journal != nil {
		return p.journal.Close()
	}
	p.closeOnce.Do(func() { p.closeErr = p.close() })
	return p.closeErr
}

func (p *Publisher) close() error {
	// Refuse new calls, wake the blocked ones, and wait for those inside the
	// gate: they never block for long once closing is closed.
	if p.n.gate.Or(closedBit) == 0 {
		p.gateOnce.Do(func() { close(p.gateIdle) })
	}
	p.n.callers.Or(closedBit)
	close(p.closing)
	<-p.gateIdle
	// Nothing sends on the queue any more: workers drain it and exit.
	close(p.queue)
	p.sealed.Store(true)

	timeout := p.cfg.Clock.After(p.cfg.CloseTimeout)
	timedOut := false
	for !timedOut && (p.n.workers.Load() > 0 || p.n.callerSends() > 0) {
		select {
		case <-p.idle:
		case <-timeout:
			timedOut = true
			p.aborted.Store(true)
			p.cancelRun()
			// Workers return once their current send does: the inner
			// publisher sees a cancelled context.
		}
	}
	p.workersWG.Wait()
	// Whatever is still queued was never taken by a worker.
	for t := range p.queue {
		p.toLeftovers(t, nil)
	}
	p.cancelRun()

	var errs []error
	if n := p.n.notSent.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%w: %d publish calls", ErrNotSent, n))
	}
	if left := p.n.leftover.Load(); left > 0 || timedOut {
		p.logger.Info("Async publisher closed after its timeout", watermill.LogFields{
			"leftovers": left, "not_sent": p.n.notSent.Load(), "timeout": p.cfg.CloseTimeout,
		})
	}
	if err := p.inner.Close(); err != nil {
		errs = append(errs, fmt.Errorf("async: closing inner publisher: %w", err))
	}
	return errors.Join(errs...)
}
