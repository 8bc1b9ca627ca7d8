package redelivery

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

// Mode says where a failed message waits for its next attempt.
type Mode int

const (
	// ModeUnset is the zero value; New rejects it so that the choice is explicit.
	ModeUnset Mode = iota
	// InMemory keeps waiting messages in a timer heap in this process. A crash
	// or Close loses them (they were already acknowledged): use it for tests and
	// where losing a pending retry is acceptable.
	InMemory
	// Durable parks waiting messages in a queue store (Config.Store, for
	// example a *sqlstore.Store); a poller
	// claims them when due and publishes them to the retry topic. Survives
	// restarts; several instances may share one store.
	Durable
	// Native hands the wait to a RocketMQ subscriber in broker-retry mode: the
	// middleware sets metadata.DelayLevel and returns the error, the subscriber
	// nacks and the broker redelivers through %RETRY%<group>.
	Native
)

// String returns "in-memory", "durable", "native" or "unset".
func (m Mode) String() string {
	switch m {
	case InMemory:
		return "in-memory"
	case Durable:
		return "durable"
	case Native:
		return "native"
	case ModeUnset:
		return "unset"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Defaults.
const (
	// DefaultPollInterval is Config.PollInterval's default.
	DefaultPollInterval = time.Second
	// DefaultClaimBatch is Config.ClaimBatch's default.
	DefaultClaimBatch = 100
	// DefaultPublishRetryInterval is Config.PublishRetryInterval's default.
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
	// Mode says where the wait lives. Required: there is no default, so losing
	// pending retries on a crash (InMemory) is always an explicit choice.
	Mode Mode

	// Publisher publishes due messages to RetryTopic (InMemory, Durable) and is
	// the default DeadLetterPublisher. Required in InMemory and Durable modes.
	// Redelivery does not close it.
	Publisher message.Publisher
	// RetryTopic is where due messages are published; the handler consumes it
	// too (see AddHandler). Default: DefaultRetryTopic(ConsumerGroup, Handler).
	// Unused in Native mode.
	RetryTopic string
	// DeadLetterPublisher publishes dead-lettered messages. Default: Publisher.
	// Required in Native mode. Redelivery does not close it.
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

	// Store keeps waiting messages in Durable mode (a queue.Queue such as a
	// *sqlstore.Store), under the queue
	// "<ConsumerGroup>/<Handler>". Required in Durable mode, unused otherwise.
	// Give the Store the same Clock. Redelivery does not close it.
	Store queue.Queue
	// PollInterval is how often the Durable poller looks for due messages; it
	// bounds how late a retry can be. Default DefaultPollInterval.
	PollInterval time.Duration
	// ClaimBatch is how many due messages the poller claims at once. Default
	// DefaultClaimBatch.
	ClaimBatch int
	// Owner names this instance in store leases. Default: a random UUID.
	Owner string

	// PublishRetryInterval is how long a due message waits before publishing
	// to RetryTopic is tried again after a failure (Durable: without limit;
	// a permanent refusal moves the row to the queue
	// "<group>/<handler>/poison"). Default DefaultPublishRetryInterval.
	PublishRetryInterval time.Duration
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
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ClaimBatch == 0 {
		c.ClaimBatch = DefaultClaimBatch
	}
	if c.Owner == "" {
		c.Owner = uuid.NewString()
	}
	if c.PublishRetryInterval == 0 {
		c.PublishRetryInterval = DefaultPublishRetryInterval
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
	switch c.Mode {
	case InMemory, Durable:
		if c.Publisher == nil {
			bad("Publisher", "required in %v mode", c.Mode)
		}
		if c.RetryTopic == "" {
			bad("RetryTopic", "required in %v mode", c.Mode)
		}
	case Native:
	case ModeUnset:
		bad("Mode", "required: choose InMemory, Durable or Native")
	default:
		bad("Mode", "%d is unknown", int(c.Mode))
	}
	if c.Mode == Durable && c.Store == nil {
		bad("Store", "required in durable mode")
	}
	if c.DeadLetterPublisher == nil {
		bad("DeadLetterPublisher", "required (or Publisher)")
	}
	if c.DeadLetterTopic == "" {
		bad("DeadLetterTopic", "required")
	}
	if c.Mode != Native && c.RetryTopic != "" && c.RetryTopic == c.DeadLetterTopic {
		bad("RetryTopic", "must differ from DeadLetterTopic (both %q)", c.RetryTopic)
	}
	if c.PollInterval < 0 {
		bad("PollInterval", "%v: must be positive", c.PollInterval)
	}
	if c.ClaimBatch < 0 {
		bad("ClaimBatch", "%d: must be positive", c.ClaimBatch)
	}
	if c.PublishRetryInterval < 0 {
		bad("PublishRetryInterval", "%v: must be positive", c.PublishRetryInterval)
	}
	if c.Clock == nil {
		bad("Clock", "required")
	}
	for i, h := range c.Hooks {
		if !isHook(h) {
			bad(fmt.Sprintf("Hooks[%d]", i), "%T implements no hook interface", h)
		}
	}
	return errors.Join(errs...)
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

// MaxReconsumeTimes returns the retries p allows (MaxAttempts-1), or -1
// (rocketmq.UnlimitedReconsumeTimes) for an unlimited policy. In Native mode
// the middleware writes it into metadata.MaxReconsumeTimes of every message it
// nacks, and the RocketMQ subscriber uses it instead of its own
// MaxReconsumeTimes: the policy is the only limit, and the subscriber needs
// no matching setting.
func MaxReconsumeTimes(p policy.Policy) int { return p.Retries() }
