package redelivery

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/policy"
)

// Defaults.
const (
	// DefaultPollInterval is DurableConfig.PollInterval's default.
	DefaultPollInterval = time.Second
	// DefaultClaimBatch is DurableConfig.ClaimBatch's default.
	DefaultClaimBatch = 100
	// DefaultPublishRetryInterval is the default PublishRetryInterval of
	// InMemoryConfig and DurableConfig.
	DefaultPublishRetryInterval = time.Second
	// DefaultMaxErrorLength is Config.MaxErrorLength's default.
	DefaultMaxErrorLength = 1024
	// maxTopicLength keeps derived topic names valid as PostgreSQL identifiers
	// once watermill-sql adds its "watermill_offsets_" prefix (63 bytes).
	maxTopicLength = 40
)

// Config configures one Redelivery, which serves one handler of one consumer
// group. Zero values take the documented defaults; Validate reports every
// remaining problem at once.
type Config struct {
	// ConsumerGroup is the consumer group the handler belongs to. Required.
	// Retries of this group go to its own retry topic, so another group
	// consuming the same topic never sees them.
	ConsumerGroup string
	// Handler is the handler's name, stored in dead-letter metadata and used
	// for the default retry topic and the store queue. Required.
	Handler string

	// Policy is the retry schedule and limit. The zero value (no MaxAttempts and
	// no Backoff) means policy.RocketMQ(): 16 retries, 10s 30s 1m ... 2h. A
	// MaxAttempts above 17 with RocketMQ() waits 2h for every retry past the
	// 16th, as the broker does. The policy's Jitter is applied with Rand.
	Policy policy.Policy
	// Scheduler is where a failed message waits for its next attempt:
	// NewInMemory (a timer heap in this process, lost on a crash),
	// NewDurable (a queue store) or a broker's own (the RocketMQ adapter's
	// NewNativeScheduler). Required: there is no default, so losing pending
	// retries on a crash is always an explicit choice. One scheduler serves
	// one Redelivery, which closes it.
	Scheduler Scheduler
	// Publisher publishes due messages to RetryTopic (schedulers that route
	// ByRetryTopic: InMemory, Durable) and is the default
	// DeadLetterPublisher. Required with those schedulers. Redelivery does
	// not close it.
	Publisher message.Publisher
	// RetryTopic is where due messages are published; the handler consumes it
	// too (see AddHandler). Default: DefaultRetryTopic(ConsumerGroup, Handler).
	// Unused with a scheduler that routes BySubscriber.
	RetryTopic string
	// DeadLetterPublisher publishes dead-lettered messages. Default: Publisher.
	// Required with a scheduler that routes BySubscriber. Redelivery does not
	// close it.
	DeadLetterPublisher message.Publisher
	// DeadLetterTopic receives the messages whose retries are over. Default:
	// DefaultDeadLetterTopic(ConsumerGroup).
	DeadLetterTopic string
	// DropPermanent drops (acknowledges, counts, reports to DroppedHook)
	// messages failing with a permanent error instead of dead-lettering them.
	DropPermanent bool
	// Broadcast marks the subscription as broadcasting: failed messages are
	// never retried nor dead-lettered, only logged, counted and reported to
	// DroppedHook. Messages with metadata.Broadcast == "true" are treated the
	// same way whatever this field says.
	Broadcast bool

	// MaxErrorLength truncates error texts stored in metadata.LastError.
	// Default DefaultMaxErrorLength; negative means no limit.
	MaxErrorLength int

	// Clock drives every wait. Default clock.Real{}.
	Clock clock.Clock
	// Rand returns numbers in [0, 1) for the policy's jitter. Default
	// math/rand/v2's Float64. Must be safe for concurrent use.
	Rand func() float64
	// Hooks observe redelivery events; each value must implement at least one
	// of HandledHook, RedeliveryScheduledHook, RedeliveredHook,
	// DeadLetteredHook, DroppedHook. Hooks run on the handler's or the scheduler's goroutine:
	// they must be fast, non-blocking and safe for concurrent use.
	Hooks []any
}

func (c *Config) setDefaults() {
	if c.Policy.MaxAttempts == 0 && c.Policy.Backoff == nil && c.Policy.MaxElapsed == 0 {
		classifier := c.Policy.Classifier
		c.Policy = policy.RocketMQ()
		c.Policy.Classifier = classifier
	}
	if c.RetryTopic == "" {
		c.RetryTopic = DefaultRetryTopic(c.ConsumerGroup, c.Handler)
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = DefaultDeadLetterTopic(c.ConsumerGroup)
	}
	if c.DeadLetterPublisher == nil {
		c.DeadLetterPublisher = c.Publisher
	}
	if c.MaxErrorLength == 0 {
		c.MaxErrorLength = DefaultMaxErrorLength
	}
	c.Clock = clock.OrReal(c.Clock)
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	c.Hooks = append([]any(nil), c.Hooks...)
}

// Validate reports every problem of c at once, each error wrapping
// ErrInvalidConfig and naming its field ("redelivery: invalid config:
// <Field>: <reason>"). New calls it after applying defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidConfig, field}, args...)...))
	}
	if strings.TrimSpace(c.ConsumerGroup) == "" {
		bad("ConsumerGroup", "required")
	}
	if strings.TrimSpace(c.Handler) == "" {
		bad("Handler", "required")
	}
	if err := c.Policy.Validate(); err != nil {
		bad("Policy", "%w", err)
	}
	route := c.route()
	switch route {
	case ByRetryTopic:
		if c.Publisher == nil {
			bad("Publisher", "required with a %v scheduler", route)
		}
		if c.RetryTopic == "" {
			bad("RetryTopic", "required with a %v scheduler", route)
		}
	case BySubscriber:
	case 0:
		if c.Scheduler == nil || nilcheck.IsNil(c.Scheduler) {
			bad("Scheduler", "required: choose NewInMemory, NewDurable or a broker's native scheduler")
		} else {
			bad("Scheduler", "%T has no route", c.Scheduler)
		}
	default:
		bad("Scheduler", "%T routes by %v, which is unknown", c.Scheduler, route)
	}
	if c.DeadLetterPublisher == nil {
		bad("DeadLetterPublisher", "required (or Publisher)")
	}
	if c.DeadLetterTopic == "" {
		bad("DeadLetterTopic", "required")
	}
	if route == ByRetryTopic && c.RetryTopic != "" && c.RetryTopic == c.DeadLetterTopic {
		bad("RetryTopic", "must differ from DeadLetterTopic (both %q)", c.RetryTopic)
	}
	if c.Clock == nil {
		bad("Clock", "required")
	}
	errs = append(errs, hooks.Validate(ErrInvalidConfig, c.Hooks, hookKinds...))
	return errors.Join(errs...)
}

// route is the scheduler's route, 0 without a scheduler.
func (c Config) route() Route {
	if c.Scheduler == nil || nilcheck.IsNil(c.Scheduler) {
		return 0
	}
	return c.Scheduler.Route()
}

// DefaultRetryTopic returns the retry topic used when Config.RetryTopic is
// empty: "reliamq_retry_<group>_<handler>", with every character outside
// [A-Za-z0-9_] replaced by '_' and long names shortened with a hash, so the
// name is valid on every backend (RocketMQ, AMQP, NATS, Redis, SQL tables).
func DefaultRetryTopic(group, handler string) string {
	return safeTopic("reliamq_retry_" + group + "_" + handler)
}

// DefaultDeadLetterTopic returns the dead-letter topic used when
// Config.DeadLetterTopic is empty: "reliamq_dlq_<group>" (one per group, like
// RocketMQ's %DLQ%<group>), made valid on every backend as DefaultRetryTopic.
func DefaultDeadLetterTopic(group string) string {
	return safeTopic("reliamq_dlq_" + group)
}

func safeTopic(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) <= maxTopicLength {
		return string(b)
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return fmt.Sprintf("%s_%08x", b[:maxTopicLength-9], h.Sum32())
}

// MaxReconsumeTimes returns the retries p allows (MaxAttempts-1), or -1 for
// an unlimited policy. With a scheduler that routes BySubscriber the
// middleware writes it into metadata.MaxReconsumeTimes of every delivery it
// nacks, and a subscriber that redelivers nacked messages itself (the
// RocketMQ one with BrokerRetry) uses it instead of a limit of its own: the
// policy is the only limit, and the subscriber needs no matching setting.
func MaxReconsumeTimes(p policy.Policy) int { return p.Retries() }
