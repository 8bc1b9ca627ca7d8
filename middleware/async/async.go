package async

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/middleware/journal"
	"github.com/reliamq/reliamq/pkg/clock"
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
	// queue is full and MaxWorkers are busy. The messages were not taken.
	ErrQueueFull = errors.New("async: queue full")
	// ErrNotSent matches the Result.Err of a Publish call that Close could
	// neither send in time nor hand to Leftovers, and the error Close returns
	// when there was at least one.
	ErrNotSent = errors.New("async: not sent before close")
)

// task is one Publish call waiting for a worker.
type task struct {
	topic string
	msgs  []*message.Message
}

// counter is an atomic counter on its own cache line: workers on both cores
// update different counters at high rates.
type counter struct {
	atomic.Int64
	_ [56]byte
}

// Stats is a snapshot of a Publisher's counters. Counts are of Publish calls,
// not messages.
type Stats struct {
	// Queued is the number of calls waiting in the queue now.
	Queued int
	// InFlight is the number of calls being sent now (by workers or callers).
	InFlight int64
	// Workers is the number of worker goroutines now.
	Workers int64
	// Done and Failed count sends that succeeded or failed, by workers and by
	// callers (CallerRuns) alike; leftovers are not included.
	Done, Failed int64
	// Rejected counts calls refused with an error: ErrQueueFull, ErrClosed,
	// a Block whose context ended, or bad input (pkg/msgcheck).
	Rejected int64
	// CallerRan counts calls sent on the caller's goroutine (CallerRuns).
	CallerRan int64
	// Leftover counts calls that Close handed to Leftovers or reported as not
	// sent.
	Leftover int64
	// Capacity is Config.QueueCapacity (after defaults): Queued/Capacity is
	// the queue's saturation, and FullPolicy applies once it reaches 1.
	Capacity int
	// MaxWorkers is Config.MaxWorkers (after defaults), the bound of Workers.
	MaxWorkers int
}

// closedBit is set in Publisher.gate once Close has started; the bits below
// count the Publish calls inside the gate.
const closedBit = 1 << 62

// Publisher sends messages through an inner publisher on a bounded pool of
// worker goroutines; Publish returns as soon as the call is queued. See the
// package documentation for the delivery guarantees. It is safe for
// concurrent use.
type Publisher struct {
	inner  message.Publisher
	cfg    Config
	logger watermill.LoggerAdapter

	// queue holds the calls waiting for a worker. Close closes it once no
	// Publish can send on it any more (see gate); workers then drain it and
	// exit.
	queue chan task

	// gate counts the Publish calls that may still send on queue or start a
	// worker, plus closedBit once Close has started. A call that finds
	// closedBit returns ErrClosed; the last call to leave after closedBit is
	// set closes gateIdle, after which Close may close queue.
	gate     counter
	gateOnce sync.Once
	gateIdle chan struct{}
	closing  chan struct{} // closed when Close starts: wakes blocked Publish calls

	// runCtx is the context of every message sent by a worker (see detach);
	// cancelled when CloseTimeout runs out, which also sets aborted.
	runCtx    context.Context
	cancelRun context.CancelFunc
	aborted   atomic.Bool

	workers   counter        // worker goroutines running
	callers   counter        // caller-run sends in progress
	workersWG sync.WaitGroup // for Close: no worker goroutine is left
	sealed    atomic.Bool    // queue closed: the last worker or caller to finish pokes idle
	idle      chan struct{}  // capacity 1: wakes Close to look at workers and callers

	// Sends by workers and by callers are counted apart: callers and
	// workers run on different goroutines, mostly on different cores.
	inFlight, done, failed, callerOK, callerFailed counter
	rejected, leftover, notSent                    counter

	closeOnce sync.Once
	closeErr  error

	journal *journal.Publisher // Config.Journal: Publish and Close go to it
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
		logger:    logger.With(watermill.LogFields{"component": "reliamq.async"}),
		queue:     make(chan task, cfg.QueueCapacity),
		gateIdle:  make(chan struct{}),
		closing:   make(chan struct{}),
		runCtx:    runCtx,
		cancelRun: cancel,
		idle:      make(chan struct{}, 1),
	}, nil
}

// PublisherDecorator returns a message.PublisherDecorator that wraps a
// publisher with NewPublisher(pub, cfg, logger).
func PublisherDecorator(cfg Config, logger watermill.LoggerAdapter) message.PublisherDecorator {
	return func(pub message.Publisher) (message.Publisher, error) {
		return NewPublisher(pub, cfg, logger)
	}
}

// Stats returns a snapshot of the counters.
func (p *Publisher) Stats() Stats {
	callerOK, callerFailed := p.callerOK.Load(), p.callerFailed.Load()
	return Stats{
		Queued:    len(p.queue),
		InFlight:  p.inFlight.Load() + p.callers.Load(),
		Workers:   p.workers.Load(),
		Done:      p.done.Load() + callerOK,
		Failed:    p.failed.Load() + callerFailed,
		Rejected:  p.rejected.Load(),
		CallerRan: callerOK + callerFailed,
		Leftover:  p.leftover.Load(),
		// Capacity and MaxWorkers are fixed at construction; they travel
		// with the counters so an observer can compute saturation from one
		// snapshot, without keeping the Config.
		Capacity:   cap(p.queue),
		MaxWorkers: p.cfg.MaxWorkers,
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
// When the queue is full and MaxWorkers are busy, FullPolicy decides:
// CallerRuns sends on this goroutine with the message's own context and
// returns the send's error; Block waits for room (see Block); Reject returns
// ErrQueueFull. After Close has started, Publish returns ErrClosed.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.journal != nil {
		return p.journal.Publish(topic, msgs...)
	}
	if err := msgcheck.Messages(msgs); err != nil {
		// Refused now, on the caller's goroutine: queued, it could only fail
		// later, where the caller no longer hears of it.
		p.rejected.Add(1)
		return fmt.Errorf("async: publish to %q: %w", topic, err)
	}
	if p.gate.Add(1)&closedBit != 0 {
		p.leave()
		p.rejected.Add(1)
		return ErrClosed
	}
	t := task{topic: topic, msgs: msgs}
	// len is only a hint, but a cheap one: with a full queue (producers
	// outrunning the workers) the call skips detach and reattach.
	detached := false
	if len(p.queue) < cap(p.queue) {
		p.detach(msgs)
		detached = true
		select {
		case p.queue <- t:
			if p.workers.Load() < int64(p.cfg.CoreWorkers) {
				p.spawn(nil, p.cfg.CoreWorkers)
			}
			p.leave()
			return nil
		default:
		}
	}
	// Queue full: an extra worker, if one may start, takes this call.
	if p.reserve(p.cfg.MaxWorkers) {
		p.detach(msgs)
		p.start(&t)
		p.leave()
		return nil
	}
	if detached {
		p.reattach(msgs)
	}

	switch p.cfg.FullPolicy {
	case Reject:
		p.leave()
		p.rejected.Add(1)
		return ErrQueueFull
	case Block:
		return p.block(t)
	}

	// CallerRuns. Counted in callers before leaving the gate, so a Close
	// that starts meanwhile waits for this send (up to CloseTimeout);
	// callers is also the caller-run part of Stats.InFlight.
	p.callers.Add(1)
	p.leave()
	defer p.callerDone()
	err := p.inner.Publish(topic, msgs...)
	if err != nil {
		p.callerFailed.Add(1)
	} else {
		p.callerOK.Add(1)
	}
	if p.cfg.OnResult != nil {
		p.cfg.OnResult(Result{Topic: topic, Messages: msgs, Err: err, CallerRan: true})
	}
	return err
}

// callerDone counts a caller-run send out.
func (p *Publisher) callerDone() {
	if p.callers.Add(-1) == 0 && p.sealed.Load() {
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
		p.rejected.Add(1)
		return fmt.Errorf("async: waiting for room in the queue: %w", context.Cause(ctx))
	case <-p.closing:
		p.leave()
		p.reattach(t.msgs)
		p.rejected.Add(1)
		return ErrClosed
	}
}

// leave ends a Publish call's stay in the gate.
func (p *Publisher) leave() {
	if p.gate.Add(-1) == closedBit {
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

// send publishes t through the inner publisher.
func (p *Publisher) send(t task) error {
	p.inFlight.Add(1)
	err := p.inner.Publish(t.topic, t.msgs...)
	p.inFlight.Add(-1)
	return err
}

// count records the outcome of a send that is reported as sent or failed.
func (p *Publisher) count(err error) {
	if err != nil {
		p.failed.Add(1)
	} else {
		p.done.Add(1)
	}
}

// detachedCtx keeps the values of a caller's context and takes cancellation
// from the pool's runCtx.
type detachedCtx struct {
	context.Context                 // runCtx: Done, Err, Deadline
	values          context.Context // the caller's context
}

func (c *detachedCtx) Value(key any) any { return c.values.Value(key) }

// detach moves each message onto a context that outlives the caller (see
// Publish). Background contexts, the common case, cost no allocation.
func (p *Publisher) detach(msgs []*message.Message) {
	for _, m := range msgs {
		c := m.Context()
		if c == context.Background() {
			m.SetContext(p.runCtx)
			continue
		}
		if p.original(m) != c {
			continue // already detached by this publisher
		}
		m.SetContext(&detachedCtx{Context: p.runCtx, values: c})
	}
}

// original returns the context a message had before detach.
func (p *Publisher) original(m *message.Message) context.Context {
	c := m.Context()
	if c == p.runCtx {
		return context.Background()
	}
	if d, ok := c.(*detachedCtx); ok && d.Context == p.runCtx {
		return d.values
	}
	return c
}

// reattach undoes detach.
func (p *Publisher) reattach(msgs []*message.Message) {
	for _, m := range msgs {
		m.SetContext(p.original(m))
	}
}

// spawn starts a worker, with first as its first call when not nil, unless
// limit workers are running.
func (p *Publisher) spawn(first *task, limit int) bool {
	if !p.reserve(limit) {
		return false
	}
	p.start(first)
	return true
}

// reserve counts in a worker about to start, unless limit are running.
// Callers are inside the gate, so no worker starts once Close has closed
// the queue.
func (p *Publisher) reserve(limit int) bool {
	for {
		w := p.workers.Load()
		if w >= int64(limit) {
			return false
		}
		if p.workers.CompareAndSwap(w, w+1) {
			return true
		}
	}
}

// start starts a worker reserved with reserve.
func (p *Publisher) start(first *task) {
	p.workersWG.Add(1)
	if first != nil {
		go p.work(*first, true)
	} else {
		go p.work(task{}, false)
	}
}

// work is a worker: it sends queued calls until the queue is closed and
// empty, Close's timeout runs out, or, while more than CoreWorkers are
// running, it has waited KeepAlive for work.
func (p *Publisher) work(first task, hasFirst bool) {
	defer p.workersWG.Done()
	if hasFirst {
		p.run(first)
	}
	var keepAlive *time.Timer // with the real clock, one timer reused
	for !p.aborted.Load() {
		select {
		case t, ok := <-p.queue:
			if !ok {
				p.exit()
				return
			}
			p.run(t)
			continue
		default:
		}
		// The queue is empty.
		if p.workers.Load() <= int64(p.cfg.CoreWorkers) {
			t, ok := <-p.queue
			if !ok {
				p.exit()
				return
			}
			p.run(t)
			continue
		}
		var expired <-chan time.Time
		if _, real := p.cfg.Clock.(clock.Real); real {
			if keepAlive == nil {
				keepAlive = time.NewTimer(p.cfg.KeepAlive)
			} else {
				keepAlive.Reset(p.cfg.KeepAlive)
			}
			expired = keepAlive.C
		} else {
			expired = p.cfg.Clock.After(p.cfg.KeepAlive)
		}
		select {
		case t, ok := <-p.queue:
			if keepAlive != nil {
				keepAlive.Stop()
			}
			if !ok {
				p.exit()
				return
			}
			p.run(t)
		case <-expired:
			// Retire unless that would leave fewer than CoreWorkers. Never
			// the last worker, so Close needs no poke.
			if w := p.workers.Load(); w > int64(p.cfg.CoreWorkers) && p.workers.CompareAndSwap(w, w-1) {
				return
			}
		}
	}
	p.exit()
}

// exit counts a worker out when it ends for Close.
func (p *Publisher) exit() {
	if p.workers.Add(-1) == 0 && p.sealed.Load() {
		p.poke()
	}
}

// run sends one queued call and reports it.
func (p *Publisher) run(t task) {
	err := p.send(t)
	if err != nil && p.aborted.Load() {
		// Cut off by Close's timeout. Hand it over rather than lose it; the
		// broker may have stored it anyway, so this can duplicate.
		p.toLeftovers(t, err)
		return
	}
	p.count(err)
	if p.cfg.OnResult != nil {
		p.cfg.OnResult(Result{Topic: t.topic, Messages: t.msgs, Err: err})
	}
}

// toLeftovers hands a call that was not sent to Leftovers, or reports it as
// not sent. sendErr is the error of a send cut off by the timeout, if any.
func (p *Publisher) toLeftovers(t task, sendErr error) {
	p.leftover.Add(1)
	// The pool's context is cancelled by now: give the messages back their
	// own values without any cancellation.
	for _, m := range t.msgs {
		m.SetContext(context.WithoutCancel(p.original(m)))
	}
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
		p.notSent.Add(1)
	}
	if p.cfg.OnResult != nil {
		p.cfg.OnResult(Result{Topic: t.topic, Messages: t.msgs, Err: err, Leftover: true})
	}
}

// Close stops intake (Publish returns ErrClosed from now on), waits up to
// CloseTimeout for queued and in-flight calls, then cancels the sends still in
// flight and hands every call not sent to Leftovers (or reports it through
// OnResult with ErrNotSent). It then closes the inner publisher, not
// Leftovers. When Close returns, none of the pool's goroutines is left. It
// returns an error matching ErrNotSent when some call was neither sent nor
// handed over, joined with the inner publisher's Close error. Later calls
// return the same result.
//
// A send that a caller runs itself (CallerRuns) is waited for like queued
// work, but not beyond CloseTimeout: it keeps the caller's context, so Close
// can not cancel it, and it may then fail against the closed inner publisher;
// its caller gets that error and OnResult reports it.
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
	if p.gate.Or(closedBit) == 0 {
		p.gateOnce.Do(func() { close(p.gateIdle) })
	}
	close(p.closing)
	<-p.gateIdle
	// Nothing sends on the queue any more: workers drain it and exit.
	close(p.queue)
	p.sealed.Store(true)

	timeout := p.cfg.Clock.After(p.cfg.CloseTimeout)
	timedOut := false
	for !timedOut && (p.workers.Load() > 0 || p.callers.Load() > 0) {
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
	if n := p.notSent.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%w: %d publish calls", ErrNotSent, n))
	}
	if left := p.leftover.Load(); left > 0 || timedOut {
		p.logger.Info("Async publisher closed after its timeout", watermill.LogFields{
			"leftovers": left, "not_sent": p.notSent.Load(), "timeout": p.cfg.CloseTimeout,
		})
	}
	if err := p.inner.Close(); err != nil {
		errs = append(errs, fmt.Errorf("async: closing inner publisher: %w", err))
	}
	return errors.Join(errs...)
}
