package rocketmqtest

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/reliamq/reliamq/internal/rocketmqlevels"
	"github.com/reliamq/reliamq/pkg/clock"
)

// NewGroupOffsetPolicy says what QUERY_CONSUMER_OFFSET answers for a consumer
// group that has never committed an offset on a queue.
type NewGroupOffsetPolicy int

const (
	// NewGroupOffsetZeroWhileYoung is the Apache broker's behaviour and the
	// default: while a queue still holds its first message (always, in this
	// in-memory broker, unless the topic was deleted and recreated) the answer
	// is offset 0, so even a ConsumeFromLastOffset consumer reads the queue
	// from the beginning.
	NewGroupOffsetZeroWhileYoung NewGroupOffsetPolicy = iota
	// NewGroupOffsetNotFound always answers QUERY_NOT_FOUND, so the client
	// falls back to its ConsumeFromWhere setting (last offset, first offset or
	// timestamp).
	NewGroupOffsetNotFound
)

// DefaultDelayLevels are the Apache broker's 18 delay levels
// ("1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"), in a new
// slice: the same table as rocketmq.DelayLevels and, from level 3 on,
// policy.RocketMQ()'s schedule.
func DefaultDelayLevels() []time.Duration { return rocketmqlevels.Default() }

// Config configures a Broker. The zero value is a working broker on a free
// port of 127.0.0.1 with the Apache broker's defaults.
type Config struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:0" (a free
	// port). The same address serves as name server and broker.
	Addr string

	// BrokerName appears in routes and message queues. Default "broker-a".
	BrokerName string
	// ClusterName appears in routes and in the CLUSTER property of stored
	// messages. Default "DefaultCluster".
	ClusterName string

	// DisableAutoCreateTopics turns topic auto-creation off. By default (false)
	// a send to an unknown topic creates it through the TBW102 path, as a
	// broker with autoCreateTopicEnable=true does; when disabled, TBW102 has no
	// route and unknown topics answer TOPIC_NOT_EXIST until created with the
	// admin API or CreateTopic. Retry topics (%RETRY%<group>) are always
	// created on demand.
	DisableAutoCreateTopics bool

	// DefaultQueueNums is the number of queues of auto-created topics (capped
	// by what the client asks for, 4 for rocketmq-client-go). Default 4.
	DefaultQueueNums int

	// DelayLevels are the durations of delay levels 1..n, used by the DELAY
	// property of sends and by consumer send-back. Empty means
	// DefaultDelayLevels().
	// Levels above len(DelayLevels) are capped to the last level.
	DelayLevels []time.Duration
	// DelayScale multiplies every delay level, so a test can run a 16-retry
	// schedule in milliseconds (0.001 turns 10s into 10ms). Zero means 1.
	DelayScale float64

	// DisableTimerMessages makes the broker ignore the timer properties
	// (TIMER_DELAY_MS, TIMER_DELAY_SEC, TIMER_DELIVER_MS) and leave the
	// timer settings out of GET_BROKER_CONFIG, as a 4.x broker does: a timer
	// message is then delivered at once. By default (false) the broker honours
	// them as a 5.x broker with timerWheelEnable=true does.
	DisableTimerMessages bool
	// TimerPrecision is the 5.x broker's timerPrecisionMs: a timer message
	// is due at its delivery time rounded up to a multiple of it. Default 1 s,
	// the 5.x default. Timer delays run on Clock and are not scaled by
	// DelayScale.
	TimerPrecision time.Duration
	// TimerMaxDelay is the longest timer delay accepted (timerMaxDelaySec);
	// a send asking for more gets MESSAGE_ILLEGAL. Default 3 days.
	TimerMaxDelay time.Duration

	// LongPollHold is the longest time a pull finding no message is held
	// before answering PULL_NOT_FOUND (it is answered at once when a message
	// arrives). The client asks for 20 s; a short hold makes consumer Shutdown
	// quicker at the cost of more pull traffic. Zero means 1 s; negative means
	// no holding at all (short polling).
	LongPollHold time.Duration

	// NewGroupOffset is what a consumer group without a committed offset gets
	// from QUERY_CONSUMER_OFFSET. The zero value is the Apache behaviour,
	// NewGroupOffsetZeroWhileYoung.
	NewGroupOffset NewGroupOffsetPolicy

	// MaxMessageSize is the largest body accepted (after the client's
	// compression; for a batch, the whole batch body). Larger sends get
	// MESSAGE_ILLEGAL. Default 4 MiB.
	MaxMessageSize int

	// MaxReconsumeTimes is used by send-back when the request does not carry
	// its own maxReconsumeTimes (rocketmq-client-go always does). Default 16.
	MaxReconsumeTimes int

	// TransactionCheckInterval is how long a prepared (half) transactional
	// message waits for END_TRANSACTION before the broker asks its producer
	// group with CHECK_TRANSACTION_STATE, and the time between further
	// checks. It runs on Clock. Default 60 s, as in the Apache broker.
	TransactionCheckInterval time.Duration
	// TransactionCheckMax is how many checks an undecided half message gets
	// before it is dropped. Default 15.
	TransactionCheckMax int

	// ClientExpiry is how long a consumer stays in its group without a
	// heartbeat naming that group (the client heartbeats every 30 s);
	// members whose connection closes leave at once. Runs on Clock. Default
	// 120 s, as in the Apache broker.
	ClientExpiry time.Duration

	// MaxFrameSize is the largest frame read from a client; a longer length
	// prefix closes the connection. Default MaxMessageSize + 1 MiB.
	MaxFrameSize int

	// Clock drives the delay-level schedule, transaction checks, client
	// expiry, queue-lock expiry and the store timestamps, so a test with a
	// fake clock can run hours of schedule at once. Long-poll holds and
	// injected latency always use real time, because the client's own
	// timeouts do. Default clock.Real{}.
	Clock clock.Clock

	// Logger receives connection-level events (never message contents).
	// Nil means watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

const (
	defaultAddr           = "127.0.0.1:0"
	defaultBrokerName     = "broker-a"
	defaultClusterName    = "DefaultCluster"
	defaultQueueNums      = 4
	defaultLongPollHold   = time.Second
	defaultMaxMessageSize = 4 << 20
	defaultMaxReconsume   = 16
)

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = defaultAddr
	}
	if c.BrokerName == "" {
		c.BrokerName = defaultBrokerName
	}
	if c.ClusterName == "" {
		c.ClusterName = defaultClusterName
	}
	if c.DefaultQueueNums == 0 {
		c.DefaultQueueNums = defaultQueueNums
	}
	if len(c.DelayLevels) == 0 {
		c.DelayLevels = DefaultDelayLevels()
	} else {
		c.DelayLevels = append([]time.Duration(nil), c.DelayLevels...)
	}
	if c.DelayScale == 0 {
		c.DelayScale = 1
	}
	if c.TimerPrecision == 0 {
		c.TimerPrecision = time.Second
	}
	if c.TimerMaxDelay == 0 {
		c.TimerMaxDelay = 72 * time.Hour
	}
	if c.LongPollHold == 0 {
		c.LongPollHold = defaultLongPollHold
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = defaultMaxMessageSize
	}
	if c.MaxReconsumeTimes == 0 {
		c.MaxReconsumeTimes = defaultMaxReconsume
	}
	if c.TransactionCheckInterval == 0 {
		c.TransactionCheckInterval = time.Minute
	}
	if c.TransactionCheckMax == 0 {
		c.TransactionCheckMax = 15
	}
	if c.ClientExpiry == 0 {
		c.ClientExpiry = 2 * time.Minute
	}
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = c.MaxMessageSize + 1<<20
	}
	c.Clock = clock.OrReal(c.Clock)
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("rocketmqtest: invalid config")

// Validate reports every invalid field at once. It is called by New after
// defaults are applied.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			bad("Addr: %q: %v", c.Addr, err)
		}
	}
	if c.DefaultQueueNums < 0 || c.DefaultQueueNums > 1024 {
		bad("DefaultQueueNums: %d: must be in 1..1024", c.DefaultQueueNums)
	}
	for i, d := range c.DelayLevels {
		if d < 0 {
			bad("DelayLevels[%d]: %v: must not be negative", i, d)
		}
	}
	if c.TimerPrecision < 0 || (c.TimerPrecision > 0 && c.TimerPrecision < time.Millisecond) || c.TimerMaxDelay < 0 {
		bad("TimerPrecision must be at least 1ms and TimerMaxDelay must not be negative")
	}
	if c.DelayScale < 0 {
		bad("DelayScale: %v: must not be negative", c.DelayScale)
	}
	if c.NewGroupOffset != NewGroupOffsetZeroWhileYoung && c.NewGroupOffset != NewGroupOffsetNotFound {
		bad("NewGroupOffset: %d: unknown", c.NewGroupOffset)
	}
	if c.MaxMessageSize < 0 {
		bad("MaxMessageSize: %d: must not be negative", c.MaxMessageSize)
	}
	if c.MaxReconsumeTimes < 0 {
		bad("MaxReconsumeTimes: %d: must not be negative", c.MaxReconsumeTimes)
	}
	if c.TransactionCheckInterval < 0 {
		bad("TransactionCheckInterval: %v: must not be negative", c.TransactionCheckInterval)
	}
	if c.TransactionCheckMax < 0 {
		bad("TransactionCheckMax: %d: must not be negative", c.TransactionCheckMax)
	}
	if c.ClientExpiry < 0 {
		bad("ClientExpiry: %v: must not be negative", c.ClientExpiry)
	}
	if c.MaxFrameSize < 0 {
		bad("MaxFrameSize: %d: must not be negative", c.MaxFrameSize)
	}
	if len(c.BrokerName) > 127 {
		bad("BrokerName: must be at most 127 bytes")
	}
	if len(c.ClusterName) > 127 {
		bad("ClusterName: must be at most 127 bytes")
	}
	return errors.Join(errs...)
}
