package redelivery

import (
	"time"

	"github.com/reliamq/reliamq/internal/hooks"
)

// ScheduledParams describes a failed message scheduled for another attempt.
type ScheduledParams struct {
	// MessageUUID is the message's UUID (unchanged across redeliveries).
	MessageUUID string
	// Topic is the topic the message was first consumed from.
	Topic string
	// ConsumerGroup and Handler identify who failed.
	ConsumerGroup, Handler string
	// Route is how the message comes back (the scheduler's route).
	Route Route
	// Retry is the number of the coming retry, from 1: the next delivery will
	// carry metadata.ReconsumeTimes == Retry.
	Retry int
	// Delay is the wait the scheduler gives the message: the one chosen
	// (policy, jitter or RetryAfter) or more, for a scheduler that waits in
	// steps (RocketMQ's NativeScheduler rounds up to a delay level). Due =
	// failure time + Delay.
	Delay time.Duration
	Due   time.Time
	// Err is the handler's error.
	Err error
}

// RedeliveredParams describes a due message published to the retry topic
// (schedulers that route ByRetryTopic).
type RedeliveredParams struct {
	MessageUUID            string
	ConsumerGroup, Handler string
	RetryTopic             string
	// Retry is the retry number (metadata.ReconsumeTimes of the published copy).
	Retry int
	// FailedAt is when the failure that scheduled this retry happened; Due
	// is when the message was due; PublishedAt when it was published.
	// PublishedAt - FailedAt is the delay the message actually waited.
	FailedAt, Due, PublishedAt time.Time
	// Err is the publish error; nil when the message was published. A failed
	// publish is tried again after Config.PublishRetryInterval.
	Err error
}

// DeadLetterParams describes a message moved to the dead-letter topic.
type DeadLetterParams struct {
	MessageUUID            string
	Topic                  string
	ConsumerGroup, Handler string
	DeadLetterTopic        string
	// Reason is one of the Reason* constants.
	Reason string
	// Attempts is how many times the handler ran on the message, from 1.
	Attempts int
	// Err is the handler's last error.
	Err error
}

// DroppedParams describes a failed message acknowledged without retry nor
// dead-lettering: a broadcast message, or a permanent error with DropPermanent.
type DroppedParams struct {
	MessageUUID            string
	Topic                  string
	ConsumerGroup, Handler string
	// Reason is ReasonBroadcast or ReasonPermanent.
	Reason   string
	Attempts int
	Err      error
}

// HandledParams describes one run of the handler on a delivery.
type HandledParams struct {
	MessageUUID            string
	Topic                  string
	ConsumerGroup, Handler string
	// Route is the Redelivery's scheduler's route.
	Route Route
	// Attempt is the handler run on this message, from 1 (reconsume count + 1).
	Attempt int
	// Duration is how long the handler ran, on Config.Clock.
	Duration time.Duration
	// Err is the handler's error (a recovered panic is a *PanicError); nil
	// on success.
	Err error
}

// HandledHook is called after every handler run, first deliveries and
// redeliveries alike, on the handler's goroutine, before the middleware acts
// on a failure. It is the only hook on the success path: the clock is read
// twice per delivery only when one is set.
type HandledHook interface {
	OnHandled(HandledParams)
}

// RedeliveryScheduledHook is called after a failed message was scheduled, on
// the handler's goroutine.
type RedeliveryScheduledHook interface {
	OnRedeliveryScheduled(ScheduledParams)
}

// RedeliveredHook is called after each attempt to publish a due message to
// the retry topic, on the scheduler's goroutine (InMemory's timer, Durable's
// poller).
type RedeliveredHook interface {
	OnRedelivered(RedeliveredParams)
}

// DeadLetteredHook is called after a message was published to the dead-letter
// topic, on the handler's goroutine.
type DeadLetteredHook interface {
	OnDeadLettered(DeadLetterParams)
}

// DroppedHook is called after a failed message was acknowledged without retry
// (broadcast, or DropPermanent), on the handler's goroutine.
type DroppedHook interface {
	OnDropped(DroppedParams)
}

// hookKinds are the hook interfaces of Config.Hooks.
var hookKinds = []hooks.Kind{
	hooks.Is[HandledHook], hooks.Is[RedeliveryScheduledHook], hooks.Is[RedeliveredHook],
	hooks.Is[DeadLetteredHook], hooks.Is[DroppedHook],
}

// hookSet keeps each kind of Config.Hooks.
type hookSet struct {
	handled     []HandledHook
	scheduled   []RedeliveryScheduledHook
	redelivered []RedeliveredHook
	deadLetter  []DeadLetteredHook
	dropped     []DroppedHook
}

func newHookSet(values []any) hookSet {
	return hookSet{
		handled:     hooks.Of[HandledHook](values),
		scheduled:   hooks.Of[RedeliveryScheduledHook](values),
		redelivered: hooks.Of[RedeliveredHook](values),
		deadLetter:  hooks.Of[DeadLetteredHook](values),
		dropped:     hooks.Of[DroppedHook](values),
	}
}
