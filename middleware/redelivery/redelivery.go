package redelivery

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// RedeliveryCount is the metadata key where the middleware keeps its own
// count of redeliveries with a scheduler that routes ByRetryTopic; it is
// metadata.RedeliveryCount, repeated here for handlers that import only this
// package.
const RedeliveryCount = metadata.RedeliveryCount

// stripped are the per-delivery keys (metadata.PerDelivery): delivery
// facts and the controls of one send or nack, which must not travel with a
// copy (a stale delay would delay the retry publish).
var stripped = metadata.PerDelivery()

// Redelivery is the consumer-side retry middleware of one handler in one
// consumer group. Create it with New, install it with AddHandler (or
// Middleware), and Close it after the router stopped.
//
// Delivery guarantees: at-least-once. With a scheduler that routes
// ByRetryTopic a failed delivery is acknowledged only after its next attempt
// is scheduled (in the timer heap or committed to the store) or the message
// was published to the dead-letter topic; when that fails the delivery is
// nacked, so the backend redelivers it at once with the same count. With
// one that routes BySubscriber the delivery is nacked for the broker to
// redeliver, and acknowledged only once dead-lettered. Duplicates happen
// when a publish to the retry or dead-letter topic succeeds but the ack or
// the store delete is lost. Losses: the InMemory scheduler loses the
// messages still waiting when the process crashes or Close is called
// (counted in Stats.LostOnClose); Durable and the RocketMQ NativeScheduler
// lose nothing. Ordering is not kept for retried messages: later messages
// overtake a waiting one (that is the point). The middleware is safe for
// concurrent use by any number of handler goroutines.
type Redelivery struct {
	cfg    Config
	logger watermill.LoggerAdapter
	hooks  hookSet
	queue  string
	route  Route
	// maxReconsume is metadata.MaxReconsumeTimes for BySubscriber nacks.
	maxReconsume string

	ready     chan struct{}
	readyOnce sync.Once
	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error

	stats counters
}

type counters struct {
	succeeded, failed, scheduled, redelivered, publishFailures,
	deadLettered, dropped, lostOnClose atomic.Uint64
	waiting atomic.Int64
}

// Stats are counters since New. Safe to call at any time.
type Stats struct {
	// Succeeded and Failed count handler runs.
	Succeeded, Failed uint64
	// Scheduled counts failed messages scheduled for another attempt.
	Scheduled uint64
	// Redelivered counts due messages published to the retry topic;
	// PublishFailures the publishes that failed and were tried again.
	Redelivered, PublishFailures uint64
	// DeadLettered counts messages published to the dead-letter topic.
	DeadLettered uint64
	// Dropped counts failed messages acknowledged without retry (broadcast,
	// DropPermanent).
	Dropped uint64
	// Waiting is how many messages wait in this process's memory (the
	// InMemory scheduler's heap; 0 for the others).
	Waiting int64
	// LostOnClose counts the messages still waiting in memory at Close.
	LostOnClose uint64
}

// New validates cfg, opens its Scheduler and returns a Redelivery. A
// scheduler that publishes (InMemory, Durable) starts its goroutine now and
// publishes due messages only after Start. Close stops it.
func New(cfg Config, logger watermill.LoggerAdapter) (*Redelivery, error) {
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Redelivery{
		cfg:   cfg,
		hooks: newHookSet(cfg.Hooks),
		queue: cfg.ConsumerGroup + "/" + cfg.Handler,
		route: cfg.Scheduler.Route(),

		maxReconsume: strconv.Itoa(MaxReconsumeTimes(cfg.Policy)),
		ready:        make(chan struct{}),
		closed:       make(chan struct{}),
		logger: logger.With(watermill.LogFields{
			"component": "redelivery", "consumer_group": cfg.ConsumerGroup, "handler": cfg.Handler,
		}),
	}
	t := Target{
		ConsumerGroup: cfg.ConsumerGroup, Handler: cfg.Handler, Queue: r.queue,
		Ready: r.ready, Clock: cfg.Clock, Logger: r.logger, Observer: observer{r},
	}
	if r.route == ByRetryTopic {
		t.Publisher, t.RetryTopic = cfg.Publisher, cfg.RetryTopic
	}
	if err := cfg.Scheduler.Open(t); err != nil {
		if !errors.Is(err, ErrInvalidConfig) {
			err = fmt.Errorf("redelivery: opening the scheduler: %w", err)
		}
		return nil, err
	}
	return r, nil
}

// Config returns the configuration with defaults applied.
func (r *Redelivery) Config() Config { return r.cfg }

// Stats returns the counters.
func (r *Redelivery) Stats() Stats {
	s := &r.stats
	return Stats{
		Succeeded: s.succeeded.Load(), Failed: s.failed.Load(), Scheduled: s.scheduled.Load(),
		Redelivered: s.redelivered.Load(), PublishFailures: s.publishFailures.Load(),
		DeadLettered: s.deadLettered.Load(), Dropped: s.dropped.Load(),
		Waiting: s.waiting.Load(), LostOnClose: s.lostOnClose.Load(),
	}
}

// Close closes the scheduler, which stops its goroutines and waits for them.
// InMemory messages still waiting are lost (Stats.LostOnClose); Durable ones
// stay in the store.
// Close the router first: a message failing after Close is nacked with
// ErrClosed. Close does not close the publishers nor the store; close them
// after it, since Close waits for a publish in flight to the retry topic. It
// is idempotent.
func (r *Redelivery) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		r.closeErr = r.cfg.Scheduler.Close()
	})
	return r.closeErr
}

// Start lets the scheduler publish due messages to the retry topic (it
// closes Target.Ready; the Durable poller waits for it). Call it once the
// retry topic is subscribed: on backends that drop messages nobody
// subscribes to yet, an earlier publish would be lost. AddHandler calls it
// when the router has subscribed the retry handler; call it yourself when
// you wire Middleware by hand. It is idempotent.
func (r *Redelivery) Start() { r.readyOnce.Do(func() { close(r.ready) }) }

// observer feeds the Redelivery's Stats and RedeliveredHooks from its
// scheduler's events (Target.Observer).
type observer struct{ r *Redelivery }

func (o observer) OnRedelivered(p RedeliveredParams) {
	if p.Err == nil {
		o.r.stats.redelivered.Add(1)
	} else {
		o.r.stats.publishFailures.Add(1)
	}
	for _, h := range o.r.hooks.redelivered {
		h.OnRedelivered(p)
	}
}

func (o observer) OnWaiting(delta int) { o.r.stats.waiting.Add(int64(delta)) }

func (o observer) OnLost(n int) { o.r.stats.lostOnClose.Add(uint64(n)) }

// Middleware wraps a handler. Use it directly with Router.AddMiddleware on the
// handler and on a second handler consuming RetryTopic, or let AddHandler do
// both.
func (r *Redelivery) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		count := r.reconsumeTimes(msg)
		// Every healthy delivery pays for this line, so it writes only when
		// the value changes: a subscriber that already set the count (the
		// RocketMQ one does) costs no map write.
		if msg.Metadata == nil {
			msg.Metadata = make(message.Metadata, 1)
		}
		if v := strconv.Itoa(count); msg.Metadata[metadata.ReconsumeTimes] != v {
			msg.Metadata[metadata.ReconsumeTimes] = v
		}
		var produced []*message.Message
		var err error
		if len(r.hooks.handled) == 0 {
			produced, err = call(h, msg)
		} else {
			produced, err = r.callObserved(h, msg, count)
		}
		if err == nil {
			r.stats.succeeded.Add(1)
			return produced, nil
		}
		err = r.onFailure(msg, count, err)
		if err != nil && r.route == BySubscriber {
			// The subscriber hands the nacked delivery to its broker: the
			// broker's limit is the policy's, so the middleware, not the
			// broker, decides when to dead-letter.
			msg.Metadata.Set(metadata.MaxReconsumeTimes, r.maxReconsume)
		}
		return nil, err
	}
}

// callObserved runs h and reports the run to the HandledHooks.
func (r *Redelivery) callObserved(h message.HandlerFunc, msg *message.Message, count int) ([]*message.Message, error) {
	start := r.cfg.Clock.Now()
	produced, err := call(h, msg)
	p := HandledParams{
		MessageUUID: msg.UUID, Topic: originalTopic(msg), ConsumerGroup: r.cfg.ConsumerGroup, Handler: r.cfg.Handler,
		Route: r.route, Attempt: count + 1, Duration: r.cfg.Clock.Now().Sub(start), Err: err,
	}
	for _, hk := range r.hooks.handled {
		hk.OnHandled(p)
	}
	return produced, err
}

func call(h message.HandlerFunc, msg *message.Message) (produced []*message.Message, err error) {
	defer func() {
		if v := recover(); v != nil {
			produced, err = nil, &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h(msg)
}

func (r *Redelivery) reconsumeTimes(msg *message.Message) int {
	key := RedeliveryCount
	if r.route == BySubscriber {
		key = metadata.ReconsumeTimes
	}
	return parseCount(msg.Metadata.Get(key))
}

// parseCount reads a reconsume count; anything but a non-negative decimal
// number counts as 0. The common cases (absent, a few digits) are parsed
// here because strconv.Atoi allocates an error for the absent key, which
// every first delivery would pay.
func parseCount(s string) int {
	if s == "" {
		return 0
	}
	if len(s) <= 9 {
		n := 0
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return parseCountSlow(s)
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	return parseCountSlow(s)
}

func parseCountSlow(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// failure is one failed delivery being decided.
type failure struct {
	msg      *message.Message
	count    int // redeliveries before this delivery
	err      error
	now      time.Time
	topic    string
	attempts int
}

func (r *Redelivery) onFailure(msg *message.Message, count int, herr error) error {
	// The router or subscriber is shutting down: not a failure of the message.
	if ctxErr := msg.Context().Err(); ctxErr != nil && errors.Is(herr, ctxErr) {
		return herr
	}
	r.stats.failed.Add(1)
	f := failure{msg: msg, count: count, err: herr, now: r.cfg.Clock.Now(), attempts: count + 1}
	f.topic = originalTopic(msg)

	if r.cfg.Broadcast || msg.Metadata.Get(metadata.Broadcast) == "true" {
		r.logger.Error("Broadcast message failed; not retried", herr, watermill.LogFields{
			"message_uuid": msg.UUID, "topic": f.topic, "attempt": f.attempts, "reason": ReasonBroadcast})
		return r.drop(f, ReasonBroadcast)
	}

	var dl *DeadLetterError
	if errors.As(herr, &dl) {
		return r.deadLetter(f, ReasonVerdict)
	}
	var ra *RetryAfterError
	verdict := errors.As(herr, &ra)
	if !verdict && !r.retryable(herr) {
		var pe *PanicError
		if errors.As(herr, &pe) {
			return r.deadLetter(f, ReasonPanic)
		}
		if r.cfg.DropPermanent {
			return r.drop(f, ReasonPermanent)
		}
		return r.deadLetter(f, ReasonPermanent)
	}
	if r.cfg.Policy.Exhausted(f.attempts) {
		return r.deadLetter(f, ReasonMaxAttempts)
	}
	retry := count + 1
	var delay time.Duration
	if verdict && !ra.UsePolicy {
		delay = ra.Delay
	} else {
		delay = r.cfg.Policy.JitteredDelay(retry, r.cfg.Rand())
	}
	if first, ok := firstFailure(msg); ok && !r.cfg.Policy.WithinBudget(f.now.Sub(first), delay) {
		return r.deadLetter(f, ReasonMaxElapsed)
	}

	lastErr := r.truncate(herr.Error())
	sc := Scheduled{Message: msg, Retry: retry, Delay: delay, FailedAt: f.now, LastError: lastErr}
	if r.route == ByRetryTopic {
		out := r.copyFor(f, lastErr)
		out.Metadata.Set(RedeliveryCount, strconv.Itoa(retry))
		out.Metadata.Set(metadata.ReconsumeTimes, strconv.Itoa(retry))
		sc.Message = out
	}
	wait, err := r.cfg.Scheduler.Schedule(msg.Context(), sc)
	if err != nil {
		err = errors.Join(herr, fmt.Errorf("redelivery: scheduling retry %d: %w", retry, err))
		if policy.IsPermanent(err) {
			// The message can never be parked (the store rejects its
			// metadata, say): nacking would loop forever.
			f.err = err
			return r.deadLetter(f, ReasonPermanent)
		}
		return err
	}
	r.stats.scheduled.Add(1)
	r.logScheduled(f, retry, wait)
	r.fireScheduled(f, retry, wait)
	if r.route == BySubscriber {
		// The error makes the router nack; the subscriber hands the
		// message to its broker as the scheduler marked it.
		return herr
	}
	return nil
}

// logScheduled logs a scheduled retry at debug level: one line per failure,
// never the payload.
func (r *Redelivery) logScheduled(f failure, retry int, delay time.Duration) {
	r.logger.Debug("Failed message scheduled for redelivery", watermill.LogFields{
		"message_uuid": f.msg.UUID, "topic": f.topic, "route": r.route.String(),
		"attempt": f.attempts, "retry": retry, "delay": delay, "due": f.now.Add(delay),
		"reason": r.truncate(f.err.Error()),
	})
}

func (r *Redelivery) fireScheduled(f failure, retry int, delay time.Duration) {
	if len(r.hooks.scheduled) == 0 {
		return
	}
	p := ScheduledParams{
		MessageUUID: f.msg.UUID, Topic: f.topic, ConsumerGroup: r.cfg.ConsumerGroup, Handler: r.cfg.Handler,
		Route: r.route, Retry: retry, Delay: delay, Due: f.now.Add(delay), Err: f.err,
	}
	for _, h := range r.hooks.scheduled {
		h.OnRedeliveryScheduled(p)
	}
}

// retryable is the policy's Retryable, except that a context error the
// handler got from its own deadline (the delivery's context is still alive,
// see onFailure) is an ordinary transient failure of the message.
func (r *Redelivery) retryable(err error) bool {
	if policy.IsPermanent(err) {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return r.cfg.Policy.Retryable(err)
}

func (r *Redelivery) drop(f failure, reason string) error {
	r.stats.dropped.Add(1)
	if reason != ReasonBroadcast { // onFailure logged it already
		r.logger.Error("Failed message dropped without retry", f.err, watermill.LogFields{
			"message_uuid": f.msg.UUID, "topic": f.topic, "attempt": f.attempts, "reason": reason,
		})
	}
	p := DroppedParams{
		MessageUUID: f.msg.UUID, Topic: f.topic, ConsumerGroup: r.cfg.ConsumerGroup, Handler: r.cfg.Handler,
		Reason: reason, Attempts: f.attempts, Err: f.err,
	}
	for _, h := range r.hooks.dropped {
		h.OnDropped(p)
	}
	return nil
}

func (r *Redelivery) deadLetter(f failure, reason string) error {
	lastErr := r.truncate(f.err.Error())
	out := r.copyFor(f, lastErr)
	md := out.Metadata
	md.Set(metadata.DeadLetterReason, reason)
	md.Set(metadata.Attempts, strconv.Itoa(f.attempts))
	md.Set(metadata.ReconsumeTimes, strconv.Itoa(f.count))
	// The subscriber that reads the dead-letter topic may overwrite
	// ReconsumeTimes with its own count (RocketMQ's does); this key survives.
	md.Set(RedeliveryCount, strconv.Itoa(f.count))
	if r.route == ByRetryTopic {
		md.Set(metadata.RetryTopic, r.cfg.RetryTopic) // where Replay sends it back
	}
	var pe *PanicError
	if errors.As(f.err, &pe) {
		md.Set(metadata.PanicStack, string(pe.Stack))
	}
	if err := r.cfg.DeadLetterPublisher.Publish(r.cfg.DeadLetterTopic, out); err != nil {
		return errors.Join(f.err, fmt.Errorf("redelivery: publishing to dead-letter topic %q: %w", r.cfg.DeadLetterTopic, err))
	}
	r.stats.deadLettered.Add(1)
	r.logger.Error("Message dead-lettered", f.err, watermill.LogFields{
		"message_uuid": f.msg.UUID, "topic": f.topic, "dead_letter_topic": r.cfg.DeadLetterTopic,
		"attempt": f.attempts, "reason": reason,
	})
	p := DeadLetterParams{
		MessageUUID: f.msg.UUID, Topic: f.topic, ConsumerGroup: r.cfg.ConsumerGroup, Handler: r.cfg.Handler,
		DeadLetterTopic: r.cfg.DeadLetterTopic, Reason: reason, Attempts: f.attempts, Err: f.err,
	}
	for _, h := range r.hooks.deadLetter {
		h.OnDeadLettered(p)
	}
	return nil
}

// copyFor copies the failed message for the retry or dead-letter topic: same
// UUID and payload, transport facts removed, failure facts added.
func (r *Redelivery) copyFor(f failure, lastErr string) *message.Message {
	md := make(message.Metadata, len(f.msg.Metadata)+6)
	for k, v := range f.msg.Metadata {
		md[k] = v
	}
	for _, k := range stripped {
		delete(md, k)
	}
	if md[metadata.OriginalUUID] == "" {
		md[metadata.OriginalUUID] = f.msg.UUID
	}
	if md[metadata.FirstFailureTime] == "" {
		md[metadata.FirstFailureTime] = f.now.UTC().Format(time.RFC3339Nano)
	}
	if f.topic != "" {
		md[metadata.OriginalTopic] = f.topic
	}
	md[metadata.LastError] = lastErr
	md[metadata.ConsumerGroup] = r.cfg.ConsumerGroup
	md[metadata.Handler] = r.cfg.Handler
	out := message.NewMessage(f.msg.UUID, f.msg.Payload)
	out.Metadata = md
	return out
}

func originalTopic(msg *message.Message) string {
	if t := msg.Metadata.Get(metadata.OriginalTopic); t != "" {
		return t
	}
	if t := msg.Metadata.Get(metadata.RocketMQTopic); t != "" {
		return t
	}
	return message.SubscribeTopicFromCtx(msg.Context())
}

func firstFailure(msg *message.Message) (time.Time, bool) {
	v := msg.Metadata.Get(metadata.FirstFailureTime)
	if v == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	return t, err == nil
}

func (r *Redelivery) truncate(s string) string {
	n := r.cfg.MaxErrorLength
	if n < 0 || len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
