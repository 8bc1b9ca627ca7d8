package rocketmq

import (
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// ConsumeFrom says where a consumer group with no committed offset starts.
type ConsumeFrom int

const (
	// ConsumeFromFirstOffset (the default) starts at the oldest stored
	// message, so a new group sees everything already published: tests are
	// deterministic and nothing published before the first Subscribe is
	// skipped.
	ConsumeFromFirstOffset ConsumeFrom = iota
	// ConsumeFromLastOffset starts after the newest message. Note that
	// RocketMQ brokers answer offset 0 for queues that still hold their first
	// message, so young topics are read from the start anyway.
	ConsumeFromLastOffset
	// ConsumeFromTimestamp starts at SubscriberConfig.ConsumeTimestamp.
	ConsumeFromTimestamp
)

// maxGroupLength keeps %RETRY%<group>_<hash> within MaxTopicLength.
const maxGroupLength = MaxTopicLength - len("%RETRY%") - 1 - 16

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// NameServers are the name server addresses. Required.
	NameServers []string
	// ConsumerGroup is the consumer group. Required; RocketMQ's
	// DEFAULT_CONSUMER is rejected. Validated like a topic name. See
	// SingleTopicGroup for the RocketMQ group each topic is consumed with.
	ConsumerGroup string
	// SingleTopicGroup uses ConsumerGroup as the RocketMQ consumer group of
	// every subscription. RocketMQ requires all members of a group to
	// subscribe to the same topics (queues of a topic are shared among every
	// member of the group, subscribed to it or not), and each Subscribe call
	// starts its own member, so with this set a group must be used for one
	// topic only, in every process. Default false: topic T is consumed by the
	// RocketMQ group ConsumerGroup + "_" + T (or, when %RETRY% plus that name
	// would exceed 127 characters, ConsumerGroup + "_" + a 16-digit hash of
	// T), which gives Watermill's semantics (a group per subscriber, any
	// number of topics). Subscriber.GroupFor tells the name, which also names
	// %RETRY%<group> and %DLQ%<group>.
	SingleTopicGroup bool
	// Broadcasting makes every subscriber of the group receive every message
	// (offsets are kept in a local file by the client, under
	// $HOME/.rocketmq_client_go or the directory in the environment variable
	// rocketmq.client.localOffsetStoreDir, keyed by InstanceName). Default false:
	// clustering, where the group shares the messages. In broadcasting mode a
	// nacked message is dropped (logged at error level), never redelivered,
	// and delivered messages carry metadata.Broadcast = "true".
	Broadcasting bool
	// TagSelector is a tag expression ("TagA || TagB"); only messages whose
	// tag matches are delivered. Default "*" (every message).
	TagSelector string
	// ConsumeFrom: ConsumeFromFirstOffset (default), ConsumeFromLastOffset or
	// ConsumeFromTimestamp.
	ConsumeFrom ConsumeFrom
	// ConsumeTimestamp is the start for ConsumeFromTimestamp. Required with
	// it, ignored otherwise.
	ConsumeTimestamp time.Time
	// ConsumeGoroutines bounds the messages of one subscription handed out at
	// the same time (broker redeliveries from %RETRY%<group> included), and
	// the consume calls the client runs at once for each of the two topics
	// (its ConsumeGoroutineNums). Default 20.
	ConsumeGoroutines int
	// ConsumeBatch is the most messages the client hands to one consume
	// call (the client's ConsumeMessageBatchMaxSize); the client commits a
	// call's offsets when the call returns. The subscription hands a call's
	// messages out one at a time, each acked or nacked on its own (a nacked
	// one is delivered again after the others of its call, so it holds up
	// nobody), on the client's goroutine while handlers are quick: fewer
	// calls cut the CPU per delivered message (docs/benchmarks.md). Once a
	// handler takes longer than SplitAfter, the rest of its call goes out
	// at once, within ConsumeGoroutines. The price of a big batch is in
	// duplicates: when a subscription ends (Close, a rebalance) while a call
	// is part-way through, the messages of that call already acked are
	// delivered again to the group (docs/semantics.md); and a message the
	// Marshaler cannot read sends its whole call to the broker's retry. Set
	// 1 to commit each message on its own. BrokerRetry always uses 1: the
	// client sends every message of a call back when the call asks for a
	// retry. Default 32, the client's pull batch; 1..32.
	ConsumeBatch int
	// SplitAfter is how long a handler may take over a message (from hand-out
	// to ack or nack) before the rest of its consume call is handed out at
	// once, each message on a goroutine of its own, instead of one after
	// another: a burst on one queue then gets up to ConsumeGoroutines
	// handlers, not one per consume call. Below it, a call costs one
	// goroutine. The time counts the wait in the output buffer and for the
	// scheduler, which on a loaded machine reaches milliseconds (Go
	// preempts a running goroutine after 10ms); splitting then only adds
	// goroutines. Default 10ms: handlers of a few milliseconds on a burst
	// that fills few queues want it lower, or a lower ConsumeBatch.
	SplitAfter time.Duration
	// InstanceName is the base of the client instance names. Each Subscribe
	// call gets its own client, named InstanceName + "-" + topic (plus a
	// counter for a second subscription of the same topic), because the client
	// shares connections, and group membership, between clients of the same
	// name. Default: unique per Subscriber. Set it for broadcasting consumers
	// that must resume from their local offsets after a restart.
	InstanceName string
	// Namespace is prefixed to topics and the group by the client. Default
	// none. metadata.RocketMQTopic reports the topic without it.
	Namespace string
	// Credentials for brokers with ACL enabled. Default none. The admin
	// requests that create topics do not carry credentials in client v2.1.2;
	// with ACL, create topics beforehand and set SkipTopicCreation.
	Credentials Credentials
	// BrokerRetry hands nacked messages to the broker's retry: the consume
	// call returns RECONSUME_LATER with the delay level taken from the nacked
	// message's metadata.DelayLevel (0 or unset: the broker's schedule, level
	// 3 + reconsume times, i.e. 10s 30s 1m ... 2h; -1: straight to the
	// dead-letter topic %DLQ%<group>). After MaxReconsumeTimes redeliveries
	// the broker moves the message to %DLQ%<group>. Default false: nacked
	// messages are redelivered by the adapter, in process, at once (after
	// NackResendDelay), as Watermill's subscribers do. Ignored when
	// Broadcasting.
	BrokerRetry bool
	// TimerRetry (BrokerRetry only) lets a nacked message wait exactly the
	// delay in its metadata.RetryDelayMillis (the NativeScheduler sets it)
	// on a RocketMQ 5.x broker with timer messages (timerWheelEnable):
	// instead of the client's send-back with a delay level, the subscriber
	// sends the message as stored to %RETRY%<group> with TIMER_DELAY_MS and
	// reconsume times + 1, and acks the delivery. The redelivery has the
	// same msg id, UUID, original topic and reconsume count as with a delay
	// level; it comes at the delay rounded up to the broker's
	// timerPrecisionMs (1 s by default). The level path is kept when the
	// delay is the duration of the chosen metadata.DelayLevel, for the
	// message due for %DLQ%<group>, when the broker has no timers (4.x:
	// the retry then waits the level, never less than asked when the level
	// was chosen with DelayLevelFor, as the NativeScheduler does), with
	// Credentials (the timer send is not signed), and when the timer send
	// fails. Default false: delay levels only.
	TimerRetry bool
	// MaxReconsumeTimes is how many broker redeliveries a message gets before
	// it goes to %DLQ%<group> (BrokerRetry, and messages the Marshaler cannot
	// read). Default 16, RocketMQ's; UnlimitedReconsumeTimes (-1) never
	// dead-letters by count. A nacked message whose metadata carries
	// metadata.MaxReconsumeTimes uses that limit instead: middleware/redelivery
	// sets it from its Policy with the NativeScheduler, so the policy alone
	// decides and this field needs no matching value. With BrokerRetry the subscriber
	// applies the limit itself (a nack at the limit goes back with delay
	// level -1, straight to %DLQ%<group>, as the broker would send it) and
	// gives the client no limit of its own.
	MaxReconsumeTimes int
	// NackResendDelay is the pause before the adapter redelivers a nacked
	// message in process. Default 0 (at once); a handler that keeps failing
	// then spins, so pair it with a retry middleware.
	NackResendDelay time.Duration
	// CloseTimeout is how long Close (or the end of a Subscribe context) waits
	// for handlers that hold a message to ack or nack it. Acks that arrive in
	// time are committed; later ones are lost and those messages redelivered.
	// Default 30s.
	CloseTimeout time.Duration
	// SkipTopicCreation stops Subscribe from creating a missing topic (and
	// %RETRY%<group>) with the admin API; it then waits for the topic's route,
	// logging that it does. Default false: create missing topics with
	// TopicQueueNums queues.
	SkipTopicCreation bool
	// TopicQueueNums is the number of queues of topics the subscriber creates.
	// Default 4.
	TopicQueueNums int
	// RoutePollInterval is how often Subscribe checks for a route it is
	// waiting for, and how often a running subscription reads its topics'
	// routes from the name servers: when a broker leaves a route its queues
	// are dropped, when it comes back they are consumed again at once (the
	// client alone re-reads routes every 30 s and waits out a pull parked on
	// a broker that died, about 33 s). Default 1s.
	RoutePollInterval time.Duration
	// Marshaler converts messages. Default DefaultMarshaler (which never
	// fails). A message a custom Marshaler cannot unmarshal is logged and
	// handed to the broker's retry, so it ends in %DLQ%<group> after
	// MaxReconsumeTimes, whatever BrokerRetry says (dropped when
	// Broadcasting).
	Marshaler Marshaler
	// Clock drives NackResendDelay and CloseTimeout (route polling waits in real time). Default
	// the real clock.
	Clock clock.Clock
}

// UnlimitedReconsumeTimes as SubscriberConfig.MaxReconsumeTimes (or as the
// value of metadata.MaxReconsumeTimes on a nacked message) lets the broker
// redeliver a message for ever: it never reaches %DLQ%<group> by count.
const UnlimitedReconsumeTimes = -1

// DefaultMaxReconsumeTimes is SubscriberConfig.MaxReconsumeTimes's default,
// RocketMQ's.
const DefaultMaxReconsumeTimes = 16

// DefaultConsumeBatch is SubscriberConfig.ConsumeBatch's default: the
// client's whole pull batch.
const DefaultConsumeBatch = maxConsumeBatch

// DefaultSplitAfter is SubscriberConfig.SplitAfter's default.
const DefaultSplitAfter = 10 * time.Millisecond

// maxConsumeBatch is the client's pull batch: a consume call never gets more.
const maxConsumeBatch = 32

func (c *SubscriberConfig) setDefaults() {
	c.NameServers = append([]string(nil), c.NameServers...)
	if c.TagSelector == "" {
		c.TagSelector = "*"
	}
	if c.ConsumeGoroutines == 0 {
		c.ConsumeGoroutines = 20
	}
	if c.ConsumeBatch == 0 {
		c.ConsumeBatch = DefaultConsumeBatch
	}
	if c.SplitAfter == 0 {
		c.SplitAfter = DefaultSplitAfter
	}
	if c.InstanceName == "" {
		c.InstanceName = "reliamq-sub-" + shortID()
	}
	if c.MaxReconsumeTimes == 0 {
		c.MaxReconsumeTimes = DefaultMaxReconsumeTimes
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 30 * time.Second
	}
	if c.TopicQueueNums == 0 {
		c.TopicQueueNums = 4
	}
	if c.RoutePollInterval == 0 {
		c.RoutePollInterval = time.Second
	}
	if c.Marshaler == nil {
		c.Marshaler = DefaultMarshaler{}
	}
	c.Clock = clock.OrReal(c.Clock)
}

// Validate reports every invalid field at once, each error wrapping
// ErrInvalidConfig and naming its field ("rocketmq: invalid config: <Field>:
// <reason>").
func (c SubscriberConfig) Validate() error {
	var errs []error
	errs = append(errs, validateNameServers(c.NameServers))
	switch {
	case c.ConsumerGroup == "":
		errs = append(errs, configError("ConsumerGroup", "required"))
	case c.ConsumerGroup == "DEFAULT_CONSUMER":
		errs = append(errs, configError("ConsumerGroup", "DEFAULT_CONSUMER is reserved"))
	default:
		full := c.ConsumerGroup
		if c.Namespace != "" {
			full = c.Namespace + "%" + full
		}
		if err := ValidateTopic(c.ConsumerGroup); err != nil {
			errs = append(errs, configError("ConsumerGroup", "%w", err))
		} else if len(full) > maxGroupLength {
			// %RETRY% + group + "_" + 16-digit hash must stay a valid topic.
			errs = append(errs, configError("ConsumerGroup", "%d characters with namespace, the limit is %d", len(full), maxGroupLength))
		}
	}
	if c.ConsumeFrom < ConsumeFromFirstOffset || c.ConsumeFrom > ConsumeFromTimestamp {
		errs = append(errs, configError("ConsumeFrom", "unknown value %d", int(c.ConsumeFrom)))
	}
	if c.ConsumeFrom == ConsumeFromTimestamp && c.ConsumeTimestamp.IsZero() {
		errs = append(errs, configError("ConsumeTimestamp", "required with ConsumeFromTimestamp"))
	}
	if c.ConsumeGoroutines < 0 {
		errs = append(errs, configError("ConsumeGoroutines", "must not be negative, got %d", c.ConsumeGoroutines))
	}
	if c.ConsumeBatch < 0 || c.ConsumeBatch > maxConsumeBatch {
		errs = append(errs, configError("ConsumeBatch", "must be in 1..%d, got %d", maxConsumeBatch, c.ConsumeBatch))
	}
	if c.SplitAfter < 0 {
		errs = append(errs, configError("SplitAfter", "must not be negative, got %s", c.SplitAfter))
	}
	if c.MaxReconsumeTimes < UnlimitedReconsumeTimes {
		errs = append(errs, configError("MaxReconsumeTimes", "must be >= 0, or -1 (UnlimitedReconsumeTimes), got %d", c.MaxReconsumeTimes))
	}
	if c.TimerRetry && !c.BrokerRetry {
		errs = append(errs, errors.New("TimerRetry: requires BrokerRetry"))
	}
	if c.NackResendDelay < 0 {
		errs = append(errs, configError("NackResendDelay", "must not be negative, got %s", c.NackResendDelay))
	}
	if c.CloseTimeout < 0 {
		errs = append(errs, configError("CloseTimeout", "must not be negative, got %s", c.CloseTimeout))
	}
	if c.TopicQueueNums < 0 || c.TopicQueueNums > 1024 {
		errs = append(errs, configError("TopicQueueNums", "must be in 1..1024, got %d", c.TopicQueueNums))
	}
	if c.RoutePollInterval < 0 {
		errs = append(errs, configError("RoutePollInterval", "must not be negative, got %s", c.RoutePollInterval))
	}
	errs = append(errs, c.Credentials.validate("Credentials"))
	return errors.Join(errs...)
}

// consumeBatch is the client's ConsumeMessageBatchMaxSize: ConsumeBatch, or 1
// with BrokerRetry, whose retry verdict the client applies to a whole call.
func (c SubscriberConfig) consumeBatch() int {
	if c.BrokerRetry {
		return 1
	}
	return c.ConsumeBatch
}

// clientMaxReconsumeTimes is the client's WithMaxReconsumeTimes. With
// BrokerRetry there is none: the subscriber applies the limit per message
// (retryLevel), since the client sends one value for every message of the
// consumer. Otherwise only messages the Marshaler cannot read (and consume
// calls the client itself gives up on) go to the broker's retry, a whole
// consume call at a time, and the broker keeps deciding per message.
func (c SubscriberConfig) clientMaxReconsumeTimes() int32 {
	if c.BrokerRetry || c.MaxReconsumeTimes == UnlimitedReconsumeTimes {
		return math.MaxInt32
	}
	return int32(c.MaxReconsumeTimes)
}

// retryLevel is the delay level a message that goes to the broker's retry is
// sent back with: level (0 the broker's schedule, 1..18, -1 the DLQ), or -1
// once the message was redelivered as often as its limit allows. The limit is
// md's metadata.MaxReconsumeTimes when it holds a valid one, else
// MaxReconsumeTimes. reconsumed is the message's reconsume count as the
// broker delivered it; the broker dead-letters on the same comparison.
func (c SubscriberConfig) retryLevel(level int, reconsumed int32, md message.Metadata) int {
	if !c.BrokerRetry {
		return level // the broker applies the client's limit
	}
	limit := c.MaxReconsumeTimes
	if v := md.Get(metadata.MaxReconsumeTimes); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= UnlimitedReconsumeTimes {
			limit = n
		}
	}
	if level >= 0 && limit != UnlimitedReconsumeTimes && int(reconsumed) >= limit {
		return -1
	}
	return level
}
