package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/internal/partial"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

var _ message.Publisher = (*Publisher)(nil)

// ErrInvalidConfig matches every error NewPublisher returns for a bad Config or
// a nil inner publisher.
var ErrInvalidConfig = errors.New("retry: invalid config")

// ErrExhausted matches (errors.Is) an *ExhaustedError: every allowed attempt
// failed, or the next retry would start after Policy.MaxElapsed.
var ErrExhausted = errors.New("retry: attempts exhausted")

// ExhaustedError is returned by Publish when retrying gave up on a retryable
// error. Unwrap returns the last publish error, so errors.Is and errors.As see
// the backend's error; Is also matches ErrExhausted.
type ExhaustedError struct {
	// Topic is the topic of the Publish call.
	Topic string
	// Attempts is the number of attempts made, including the first.
	Attempts int
	// Elapsed is the time from the first failure to the end of the last
	// attempt, on the configured Clock.
	Elapsed time.Duration
	// Budget is true when the loop stopped because the next retry would have
	// started after Policy.MaxElapsed, rather than because MaxAttempts was reached.
	Budget bool
	// Err is the last publish error.
	Err error

	accepted    []string
	acceptedIdx []int
}

// Accepted returns the UUIDs of the messages of the Publish call that the
// backend accepted in any attempt (reported through PartialError), so a
// fallback stores only the others. It is empty when the backend never said.
// Err's own Accepted, if any, covers only the last attempt.
func (e *ExhaustedError) Accepted() []string { return e.accepted }

// AcceptedIndexes returns the positions, in the Publish call, of the messages
// Accepted lists, in the same order (see PartialIndexError).
func (e *ExhaustedError) AcceptedIndexes() []int { return e.acceptedIdx }

func (e *ExhaustedError) Error() string {
	why := "attempts exhausted"
	if e.Budget {
		why = "time budget exhausted"
	}
	return fmt.Sprintf("retry: publish to %q failed after %d attempts in %v (%s): %v", e.Topic, e.Attempts, e.Elapsed, why, e.Err)
}

// Unwrap returns the last publish error.
func (e *ExhaustedError) Unwrap() error { return e.Err }

// Is matches ErrExhausted.
func (e *ExhaustedError) Is(target error) bool { return target == ErrExhausted }

// PartialError is implemented by publish errors of backends that know which
// messages of a failed multi-message Publish they accepted. The retry publisher
// then sends only the others again. Accepted returns the UUIDs of the accepted
// messages. Find it with errors.As, so it may be wrapped.
type PartialError interface {
	error
	Accepted() []string
}

// PartialIndexError is implemented by partial errors that also know the
// positions of the accepted messages in the failed Publish call
// (rocketmq.SendError, ExhaustedError). The retry publisher and the fallback
// use positions when they have them: two messages of one call may share a
// UUID, and UUIDs alone cannot tell which of them was accepted. From a
// PartialError without positions, each accepted UUID stands for one message
// with that UUID, the earliest still pending.
type PartialIndexError interface {
	error
	AcceptedIndexes() []int
}

// Params describes one failed attempt that will be retried (see RetryHook).
// The hook must treat Messages as read-only.
type Params struct {
	// Attempt is the 1-based number of the attempt that failed (1 = the first).
	Attempt int
	// Delay is the delay that is about to be waited before the next attempt,
	// jitter included: exactly what the loop waits.
	Delay time.Duration
	// Err is the error of the failed attempt.
	Err error
	// Elapsed is the time since the first attempt failed.
	Elapsed time.Duration
	// Topic is the Publish topic.
	Topic string
	// Messages are the messages the next attempt will send (after a
	// PartialError, only those not yet accepted).
	Messages []*message.Message
}

// Config configures a Publisher.
type Config struct {
	// Policy decides attempts, delays and which errors are retried. Required:
	// the zero Policy fails validation. policy.RocketMQ() or a policy loaded
	// with policy.FromYAML are typical values.
	Policy policy.Policy
	// Clock waits between attempts and measures elapsed time. Default
	// clock.Real{}; tests pass a clocktest.Fake.
	Clock clock.Clock
	// Rand returns numbers in [0, 1) for the Policy's jitter, one per retry.
	// Default (nil) math/rand/v2's Float64; tests pass a fixed function to get
	// known delays. It must be safe for concurrent use, since Publish may run
	// on many goroutines. Not called when the Policy has no jitter.
	Rand func() float64
	// Hooks are observers: values implementing AttemptHook, RetryHook and/or
	// GiveUpHook (see AttemptHook). Default none; a nil value or one
	// implementing none of them fails validation. With no AttemptHook the
	// success path runs no hook code beyond a length check.
	Hooks []any
}

func (c *Config) setDefaults() {
	c.Clock = clock.OrReal(c.Clock)
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	c.Hooks = append([]any(nil), c.Hooks...)
}

// Validate reports an invalid Policy and every hook value that implements no
// hook interface, each error wrapping ErrInvalidConfig and naming its field
// ("retry: invalid config: <Field>: <reason>").
func (c Config) Validate() error {
	var errs []error
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("%w: Policy: %w", ErrInvalidConfig, err))
	}
	if err := hooks.Validate(ErrInvalidConfig, c.Hooks, hooks.Is[AttemptHook], hooks.Is[RetryHook], hooks.Is[GiveUpHook]); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Publisher retries a failed Publish of its inner publisher. See the package
// documentation for the delivery guarantees. It is safe for concurrent use.
type Publisher struct {
	inner  message.Publisher
	cfg    Config
	hooks  hookSet
	logger watermill.LoggerAdapter
}

// NewPublisher decorates inner with retries configured by cfg. A nil logger is
// replaced by watermill.NopLogger. Errors match ErrInvalidConfig.
func NewPublisher(inner message.Publisher, cfg Config, logger watermill.LoggerAdapter) (*Publisher, error) {
	if err := errors.Join(nilcheck.Required(ErrInvalidConfig, "inner publisher", inner), nilcheck.Optional(ErrInvalidConfig, "Clock", cfg.Clock)); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Publisher{
		inner:  inner,
		cfg:    cfg,
		hooks:  newHooks(cfg.Hooks),
		logger: logger.With(watermill.LogFields{"component": "reliamq.retry"}),
	}, nil
}

// PublisherDecorator returns a message.PublisherDecorator that wraps a
// publisher with NewPublisher(pub, cfg, logger), for Router.AddPublisherDecorators.
func PublisherDecorator(cfg Config, logger watermill.LoggerAdapter) message.PublisherDecorator {
	return func(pub message.Publisher) (message.Publisher, error) {
		return NewPublisher(pub, cfg, logger)
	}
}

// Close closes the inner publisher.
func (p *Publisher) Close() error { return p.inner.Close() }

// Publish publishes msgs to topic through the inner publisher, retrying per the
// Policy. Whatever error ends a call in which some attempt had messages
// accepted (PartialError) reports, through Accepted and AcceptedIndexes
// (PartialIndexError), the messages of the whole call accepted in any attempt,
// by position in the call. A message that breaks the rules every reliamq publisher shares (nil,
// an empty or invalid UUID, invalid metadata: see pkg/msgcheck) is refused
// before anything is sent with a permanent error matching the msgcheck
// sentinel. It returns nil on success; the error when it is not retryable (as
// is, or with its text unchanged in the wrapper described above;
// policy.IsPermanent still holds); an *ExhaustedError when retries ran out;
// and an error matching both the context error and the last publish error when
// a message context ended.
//
// Elapsed time (Params.Elapsed, ExhaustedError.Elapsed and the
// Policy.MaxElapsed budget) is measured from the moment the first attempt
// failed, not from its start: the success path reads no clock (a clock read
// costs more than the whole decorator) unless an AttemptHook is set, which
// gets each attempt's Duration. The first attempt's own duration, at most the
// backend's send timeout, is therefore not counted.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if err := msgcheck.Messages(msgs); err != nil {
		// Bad input is never sent, so never retried (permanent).
		return fmt.Errorf("retry: publish to %q: %w", topic, err)
	}
	var sent time.Time
	if len(p.hooks.attempt) > 0 {
		sent = p.cfg.Clock.Now()
	}
	err := p.inner.Publish(topic, msgs...)
	if len(p.hooks.attempt) > 0 {
		p.attempted(1, topic, msgs, err, sent)
	}
	if err == nil {
		return nil
	}
	return p.retry(p.cfg.Clock.Now(), topic, msgs, err)
}

// attempted runs the AttemptHooks for one call to the inner publisher.
func (p *Publisher) attempted(attempt int, topic string, msgs []*message.Message, err error, sent time.Time) {
	params := AttemptParams{Attempt: attempt, Topic: topic, Messages: msgs, Err: err, Duration: p.cfg.Clock.Now().Sub(sent)}
	if err != nil {
		params.Retryable = p.cfg.Policy.Retryable(err)
	}
	for _, h := range p.hooks.attempt {
		h.OnPublishAttempt(params)
	}
}

// gaveUp runs the GiveUpHooks and returns err.
func (l *loop) gaveUp(reason GiveUpReason, elapsed time.Duration, err error) error {
	if len(l.p.hooks.giveUp) == 0 {
		return err
	}
	params := GiveUpParams{
		Reason: reason, Attempts: l.attempts, Elapsed: elapsed,
		Topic: l.topic, Messages: l.pending, Err: err,
	}
	for _, h := range l.p.hooks.giveUp {
		h.OnGiveUp(params)
	}
	return err
}

type stopReason int

const (
	stopNone      stopReason = iota // go on: the next attempt may start
	stopFinal                       // the policy does not retry the error
	stopExhausted                   // Policy.MaxAttempts attempts failed
	stopBudget                      // the next retry would start after Policy.MaxElapsed
	stopCanceled                    // the send context ended
)

// loop is the state of one retried Publish.
type loop struct {
	p        *Publisher
	ctx      context.Context
	start    time.Time
	topic    string
	all      []*message.Message // the call's messages, for Accepted
	pending  []*message.Message
	idx      []int // idx[i] is the position of pending[i] in all
	attempts int
	lastErr  error
}

// retry continues a Publish whose first attempt failed with first at start:
// decide, wait, attempt again, until an attempt succeeds or the policy, the
// budget or the send context ends the loop.
func (p *Publisher) retry(start time.Time, topic string, msgs []*message.Message, first error) error {
	ctx, cleanup := sendContext(msgs)
	defer cleanup()

	l := &loop{p: p, ctx: ctx, start: start, topic: topic, all: msgs, pending: msgs, attempts: 1, lastErr: first}
	l.idx = make([]int, len(msgs))
	for i := range l.idx {
		l.idx[i] = i
	}
	l.dropAccepted(first)
	if len(l.pending) == 0 {
		// The backend accepted every message although the call failed.
		return nil
	}
	if ctx.Err() != nil {
		// Ended before or during the first attempt: not retried, whatever the error.
		return l.end(stopCanceled)
	}
	for {
		if stop := l.next(); stop != stopNone {
			return l.end(stop)
		}
		if l.attempt() {
			return nil
		}
	}
}

// next decides what follows the failed attempt l.attempts: it returns
// stopNone after waiting the delay before the next attempt, or why the loop
// stops. A context that ended during the attempt stops the loop before the
// RetryHooks run; the wait ends early when the context ends, and the context
// is checked again after it, since a timer may fire as the context ends: no
// attempt starts on an ended context.
func (l *loop) next() stopReason {
	pol := &l.p.cfg.Policy
	if !pol.Retryable(l.lastErr) {
		return stopFinal
	}
	if pol.Exhausted(l.attempts) {
		return stopExhausted
	}
	if l.ctx.Err() != nil {
		// Ended during the attempt: no retry is announced that cannot start.
		return stopCanceled
	}
	d := pol.JitteredDelay(l.attempts, l.jitterDraw())
	elapsed := l.p.cfg.Clock.Now().Sub(l.start)
	if !pol.WithinBudget(elapsed, d) {
		return stopBudget
	}
	l.retrying(d, elapsed)
	if d > 0 {
		select {
		case <-l.p.cfg.Clock.After(d):
		case <-l.ctx.Done():
			return stopCanceled
		}
	}
	if l.ctx.Err() != nil {
		return stopCanceled
	}
	return stopNone
}

// retrying logs and runs the RetryHooks for a retry after delay d.
func (l *loop) retrying(d, elapsed time.Duration) {
	l.p.logger.Debug("Publish failed, retrying", watermill.LogFields{
		"topic": l.topic, "attempt": l.attempts, "delay": d, "err": l.lastErr,
	})
	if len(l.p.hooks.retry) == 0 {
		return
	}
	params := Params{
		Attempt: l.attempts, Delay: d, Err: l.lastErr, Elapsed: elapsed,
		Topic: l.topic, Messages: l.pending,
	}
	for _, h := range l.p.hooks.retry {
		h.OnPublishRetry(params)
	}
}

// attempt sends the pending messages once more and reports whether the call
// is done: the attempt succeeded, or its error says the backend accepted
// every message still pending.
func (l *loop) attempt() bool {
	l.attempts++
	var sent time.Time
	if len(l.p.hooks.attempt) > 0 {
		sent = l.p.cfg.Clock.Now()
	}
	err := l.p.inner.Publish(l.topic, l.pending...)
	if len(l.p.hooks.attempt) > 0 {
		l.p.attempted(l.attempts, l.topic, l.pending, err, sent)
	}
	if err == nil {
		return true
	}
	l.lastErr = err
	l.dropAccepted(err)
	return len(l.pending) == 0
}

// end builds the error that ends a Publish for reason and runs the GiveUpHooks.
func (l *loop) end(reason stopReason) error {
	elapsed := l.p.cfg.Clock.Now().Sub(l.start)
	switch reason {
	case stopFinal:
		why := GiveUpPermanent
		if errors.Is(l.lastErr, context.Canceled) || errors.Is(l.lastErr, context.DeadlineExceeded) {
			why = GiveUpCanceled
		}
		return l.gaveUp(why, elapsed, l.ofCall(l.lastErr))
	case stopExhausted, stopBudget:
		l.p.logger.Debug("Publish retries exhausted", watermill.LogFields{
			"topic": l.topic, "attempts": l.attempts, "elapsed": elapsed, "budget": reason == stopBudget, "err": l.lastErr,
		})
		why := GiveUpExhausted
		if reason == stopBudget {
			why = GiveUpBudget
		}
		return l.gaveUp(why, elapsed, l.exhausted(elapsed, reason == stopBudget))
	}
	return l.gaveUp(GiveUpCanceled, elapsed, l.ofCall(
		fmt.Errorf("retry: publish to %q stopped after %d attempts: %w", l.topic, l.attempts, errors.Join(context.Cause(l.ctx), l.lastErr))))
}

// jitterDraw draws the random number of the next delay's jitter from
// Config.Rand; without jitter the number is unused and not drawn.
func (l *loop) jitterDraw() float64 {
	if l.p.cfg.Policy.Jitter.Mode == policy.JitterNone {
		return 0
	}
	return l.p.cfg.Rand()
}

// exhausted builds the ExhaustedError, with the messages no longer pending:
// accepted by the backend in some attempt.
func (l *loop) exhausted(elapsed time.Duration, budget bool) *ExhaustedError {
	e := &ExhaustedError{Topic: l.topic, Attempts: l.attempts, Elapsed: elapsed, Budget: budget, Err: l.lastErr}
	e.accepted, e.acceptedIdx = l.acceptedOfCall()
	return e
}

// acceptedOfCall lists the messages no longer pending, by UUID and by
// position in the call.
func (l *loop) acceptedOfCall() ([]string, []int) {
	if len(l.pending) == len(l.all) {
		return nil, nil
	}
	still := make([]bool, len(l.all))
	for _, i := range l.idx {
		still[i] = true
	}
	var ids []string
	var idx []int
	for i, m := range l.all {
		if !still[i] && m != nil {
			ids = append(ids, m.UUID)
			idx = append(idx, i)
		}
	}
	return ids, idx
}

// ofCall returns err as is when no attempt had messages accepted. Otherwise
// the last attempt sent only the pending messages, so the positions (and the
// UUIDs) its error reports accepted are of that attempt, not of the call:
// err is wrapped, its text unchanged, in an error whose Accepted and
// AcceptedIndexes cover every attempt and count positions in the call.
func (l *loop) ofCall(err error) error {
	ids, idx := l.acceptedOfCall()
	if idx == nil {
		return err
	}
	return &callError{err: err, accepted: ids, acceptedIdx: idx}
}

// callError is an error ending a retried Publish, with what the whole call
// had accepted (see loop.ofCall). errors.Is and errors.As see err.
type callError struct {
	err         error
	accepted    []string
	acceptedIdx []int
}

func (e *callError) Error() string          { return e.err.Error() }
func (e *callError) Unwrap() error          { return e.err }
func (e *callError) Accepted() []string     { return e.accepted }
func (e *callError) AcceptedIndexes() []int { return e.acceptedIdx }

// dropAccepted removes from pending the messages err reports as accepted: by
// position when err has them (PartialIndexError, positions in the call that
// failed, which sent pending), otherwise one pending message per accepted
// UUID, the earliest.
func (l *loop) dropAccepted(err error) {
	drop := partial.Accepted(err, l.pending)
	if drop == nil {
		return
	}
	kept := make([]*message.Message, 0, len(l.pending))
	keptIdx := make([]int, 0, len(l.pending))
	for i, m := range l.pending {
		if !drop[i] {
			kept = append(kept, m)
			keptIdx = append(keptIdx, l.idx[i])
		}
	}
	l.pending, l.idx = kept, keptIdx
}

// sendContext returns the context the retry loop obeys: the message context
// when every message shares one (the common case), otherwise a context that
// ends as soon as any message's context ends.
func sendContext(msgs []*message.Message) (context.Context, func()) {
	var first context.Context
	distinct := false
	for _, m := range msgs {
		if m == nil {
			continue
		}
		c := m.Context()
		if first == nil {
			first = c
		} else if c != first {
			distinct = true
		}
	}
	if first == nil {
		return context.Background(), func() {}
	}
	if !distinct {
		return first, func() {}
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	var stops []func() bool
	seen := map[context.Context]bool{}
	for _, m := range msgs {
		if m == nil || seen[m.Context()] {
			continue
		}
		c := m.Context()
		seen[c] = true
		stops = append(stops, context.AfterFunc(c, func() { cancel(context.Cause(c)) }))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel(nil)
	}
}
