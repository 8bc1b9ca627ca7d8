package redelivery

import (
	"context"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/pkg/clock"
)

// Scheduler keeps a failed message until its next attempt is due: it is
// where the wait lives (Config.Scheduler). This package has two, NewInMemory
// (a timer heap in this process) and NewDurable (a queue store); a broker
// adapter may bring one that hands the wait to its broker (the RocketMQ
// adapter's NativeScheduler). A scheduler gets everything it needs in Open's
// Target and in each Schedule call; it never reaches into the Redelivery.
//
// One scheduler value serves one Redelivery: New calls Route, then Open once;
// Schedule is called on handler goroutines, concurrently; Redelivery.Close
// calls Close once.
type Scheduler interface {
	// Route says how a scheduled message reaches the handler again; it must
	// not change. New asks it before Open.
	Route() Route
	// Open binds the scheduler to the Redelivery New is building. A
	// scheduler that publishes must not publish before t.Ready is closed.
	// An error fails New; one that wraps ErrInvalidConfig should name the
	// field ("Scheduler: Store: required").
	Open(t Target) error
	// Schedule takes a failed delivery that gets another attempt (see
	// Scheduled) and returns the delay the message will actually wait:
	// s.Delay, or more when the scheduler can only wait in steps (the
	// RocketMQ delay levels). It returns when the wait is safe as far as
	// this scheduler promises (in the heap, committed to the store, marked
	// on the delivery); the middleware then acks the delivery (ByRetryTopic)
	// or nacks it (BySubscriber). An error nacks the delivery, so the
	// backend delivers it again; a policy.Permanent error dead-letters it
	// instead (the message can never be scheduled). After Close, Schedule
	// returns ErrClosed.
	Schedule(ctx context.Context, s Scheduled) (time.Duration, error)
	// Close stops the scheduler's goroutines and waits for them, including a
	// publish in flight. It does not close Target.Publisher.
	Close() error
}

// Route says how a scheduled message reaches the handler again.
type Route int

const (
	// ByRetryTopic: the scheduler publishes the scheduled copy to
	// Target.RetryTopic when it is due, and the handler consumes that topic
	// too (AddHandler registers it there). The middleware acks the failed
	// delivery once Schedule returned, and counts redeliveries itself
	// (metadata.RedeliveryCount). NewInMemory and NewDurable route so.
	ByRetryTopic Route = iota + 1
	// BySubscriber: Schedule marks the failed delivery itself, in its
	// metadata, for its subscriber; the middleware nacks it, and the
	// subscriber's broker delivers it again on the original topic, with the
	// broker's count in metadata.ReconsumeTimes. There is no retry topic.
	// Every delivery the middleware nacks then carries
	// metadata.MaxReconsumeTimes, the policy's retry limit, so the broker
	// never gives up before the middleware dead-letters the message.
	BySubscriber
)

// String returns "retry-topic", "subscriber" or "route(n)".
func (r Route) String() string {
	switch r {
	case ByRetryTopic:
		return "retry-topic"
	case BySubscriber:
		return "subscriber"
	}
	return "route(" + strconv.Itoa(int(r)) + ")"
}

// Target is what New gives a scheduler in Open.
type Target struct {
	// ConsumerGroup and Handler name the Redelivery; Queue is
	// "<ConsumerGroup>/<Handler>", the queue a store keeps its messages
	// under.
	ConsumerGroup, Handler, Queue string
	// Publisher publishes due messages to RetryTopic (ByRetryTopic; both
	// unset for BySubscriber). Config.Publisher and Config.RetryTopic.
	Publisher  message.Publisher
	RetryTopic string
	// Ready is closed once the handler consumes RetryTopic
	// (Redelivery.Start, which AddHandler calls): publish nothing before,
	// since several backends drop messages nobody subscribes to yet.
	Ready <-chan struct{}
	// Clock is Config.Clock: drive every wait with it.
	Clock clock.Clock
	// Logger is the Redelivery's logger, with its component fields.
	Logger watermill.LoggerAdapter
	// Observer is told of the scheduler's events: it feeds the
	// Redelivery's Stats and its RedeliveredHooks.
	Observer Observer
}

// Observer receives a scheduler's events (Target.Observer). Its methods are
// safe for concurrent use and return quickly.
type Observer interface {
	// OnRedelivered reports an attempt to publish a due message to the
	// retry topic, successful (p.Err nil) or not.
	OnRedelivered(p RedeliveredParams)
	// OnWaiting reports that the messages this process holds changed by
	// delta: +1 when the scheduler takes one into memory, -1 when it
	// published or lost one. Schedulers that keep nothing in memory do not
	// call it.
	OnWaiting(delta int)
	// OnLost reports n messages the scheduler held in memory and dropped at
	// Close without publishing them (Stats.LostOnClose).
	OnLost(n int)
}

// Scheduled is one failed delivery handed to Scheduler.Schedule.
type Scheduled struct {
	// Message is what the scheduler keeps. ByRetryTopic: a copy of the
	// failed delivery made for the retry topic (same UUID and payload, the
	// failure facts and the coming count in its metadata), the scheduler's
	// to keep and publish. BySubscriber: the failed delivery itself, whose
	// metadata the scheduler sets for its subscriber.
	Message *message.Message
	// Retry is the number of the coming retry, from 1.
	Retry int
	// Delay is the wait asked for (the policy's, or a RetryAfter verdict's);
	// the message is due at FailedAt + Delay.
	Delay time.Duration
	// FailedAt is when the handler failed, on Config.Clock.
	FailedAt time.Time
	// LastError is the handler's error text, cut to Config.MaxErrorLength
	// (also the copy's metadata.LastError).
	LastError string
}

// Due is when the message is due: FailedAt + Delay.
func (s Scheduled) Due() time.Time { return s.FailedAt.Add(s.Delay) }
