package fallback

import (
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

// Relay defaults.
const (
	DefaultPollInterval     = time.Second
	DefaultBatchSize        = 100
	DefaultFailureThreshold = 5
)

// DefaultRelayPolicy is the per-row policy used when RelayConfig.Policy is the
// zero value: unlimited attempts (a row is never poisoned for a retryable
// error, so an outage of any length drains by itself), waits of 1s, 2s, 4s ...
// capped at 5m, with ±20 % jitter so rows that failed together do not come due
// together.
func DefaultRelayPolicy() policy.Policy {
	return policy.Policy{
		Backoff: policy.Exponential(time.Second, 2, 5*time.Minute),
		Jitter:  policy.UniformJitter(0.2),
	}
}

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Store holds the rows to send, for example a *sqlstore.Store. Required.
	Store queue.Queue
	// Queue is the store queue to drain. Default "" (the Publisher's and
	// Outbox's default).
	Queue string
	// Publisher sends the rows, normally retry.Publisher(broker publisher).
	// Required. The Relay never closes it.
	Publisher message.Publisher
	// Policy decides, per row, how long to wait after a failed send
	// (JitteredDelay(attempts)), when to give up (Exhausted(attempts), or the
	// MaxElapsed budget counted from the row's CreatedAt) and which errors are
	// final (policy.Permanent, or Classifier Stop: poisoned at once). The zero
	// value means DefaultRelayPolicy().
	Policy policy.Policy
	// PollInterval is the wait between claims when the last claim found fewer
	// rows than BatchSize. Default DefaultPollInterval (1s).
	PollInterval time.Duration
	// BatchSize is the most rows claimed at once. Sent rows of a batch are
	// deleted with one statement after the batch, so a crash re-sends at most
	// one batch. The whole batch must be sent within the store's LeaseTimeout,
	// or another relay may claim its rows too. Default DefaultBatchSize (100).
	BatchSize int
	// Concurrency is how many sends of a batch run at once. Default 1, which
	// keeps the rows' due order for a single relay.
	Concurrency int
	// FailureThreshold is how many retryable send failures in a row make the
	// relay treat the broker as down: it stops the batch, releases the untried
	// rows without counting an attempt, and from then on claims one row at a
	// time (a probe), waiting OutageBackoff between probes, until a send
	// succeeds. Default DefaultFailureThreshold (5).
	FailureThreshold int
	// OutageBackoff is the wait before probe n while the broker is down.
	// Default policy.Exponential(PollInterval, 2, 2*PollInterval): a stored
	// message is resent within two poll intervals of the broker's return.
	OutageBackoff policy.Backoff
	// PoisonStore receives rows that are poisoned (permanent error or policy
	// exhausted), in PoisonQueue. Default Store. When it shares Store's
	// database (both are queue.TxQueue values with the same DB), the move is
	// one transaction. Ignored when PoisonTopic is set.
	PoisonStore queue.Queue
	// PoisonQueue is the queue poisoned rows go to. Default Queue+"/poison",
	// or "poison" when Queue is "". Must differ from Queue on the same store.
	PoisonQueue string
	// PoisonTopic, when set, makes the relay publish poisoned messages to this
	// topic through PoisonPublisher instead of storing them. If that publish
	// fails the row is kept and retried later.
	PoisonTopic string
	// PoisonPublisher publishes to PoisonTopic. Default Publisher.
	PoisonPublisher message.Publisher
	// Owner is the lease owner written to claimed rows. Default the Store's.
	Owner string
	// StoreTimeout bounds the store writes that finish a batch (delete,
	// reschedule, poison, release); they run even after Run's context ended,
	// so a stopping relay records what it sent. Default 10s.
	StoreTimeout time.Duration
	// Clock drives polling, backoff and due times. Default clock.Real.
	Clock clock.Clock
	// Rand returns numbers in [0, 1) for the Policy's jitter, one per failed
	// send (JitteredDelay(attempts, Rand())). Default (nil) math/rand/v2's
	// Float64; tests pass a fixed function to get known due times. It is
	// called on the goroutine running Run; one function shared by several
	// relays must be safe for concurrent use.
	Rand func() float64
	// Hooks are SentHook, FailedHook, PoisonedHook and OutageHook values.
	Hooks []any
}

func isZeroPolicy(p policy.Policy) bool {
	return p.MaxAttempts == 0 && p.MaxElapsed == 0 && p.Backoff == nil && p.MaxDelay == 0 &&
		p.Jitter == (policy.Jitter{}) && p.Classifier == nil
}

func (c *RelayConfig) setDefaults() {
	if isZeroPolicy(c.Policy) {
		c.Policy = DefaultRelayPolicy()
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if c.OutageBackoff == nil && c.PollInterval > 0 {
		c.OutageBackoff = policy.Exponential(c.PollInterval, 2, 2*c.PollInterval)
	}
	if c.PoisonStore == nil {
		c.PoisonStore = c.Store
	}
	if c.PoisonQueue == "" {
		if c.Queue == "" {
			c.PoisonQueue = "poison"
		} else {
			c.PoisonQueue = c.Queue + "/poison"
		}
	}
	if c.PoisonPublisher == nil {
		c.PoisonPublisher = c.Publisher
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = DefaultStoreTimeout
	}
	c.Clock = clock.OrReal(c.Clock)
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
}

// Validate reports every problem of the config at once, each error wrapping
// ErrInvalidConfig and naming its field.
func (c RelayConfig) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, fieldError("Store", "required"))
	}
	if c.Publisher == nil {
		errs = append(errs, fieldError("Publisher", "required"))
	}
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, fieldError("Policy", "%w", err))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fieldError("PollInterval", "%v: must be > 0", c.PollInterval))
	}
	if c.BatchSize < 0 {
		errs = append(errs, fieldError("BatchSize", "%d: must be > 0", c.BatchSize))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fieldError("Concurrency", "%d: must be > 0", c.Concurrency))
	}
	if c.FailureThreshold < 0 {
		errs = append(errs, fieldError("FailureThreshold", "%d: must be > 0", c.FailureThreshold))
	}
	if v, ok := c.OutageBackoff.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			errs = append(errs, fieldError("OutageBackoff", "%w", err))
		}
	}
	if err := queue.ValidateQueue(c.Queue); err != nil {
		errs = append(errs, fieldError("Queue", "%w", err))
	}
	if err := queue.ValidateQueue(c.PoisonQueue); err != nil {
		errs = append(errs, fieldError("PoisonQueue", "%w", err))
	}
	if c.PoisonTopic != "" {
		if err := queue.ValidateTopic(c.PoisonTopic); err != nil {
			errs = append(errs, fieldError("PoisonTopic", "%w", err))
		}
	} else if c.PoisonStore != nil && c.Store != nil && c.PoisonQueue == c.Queue &&
		sameTable(c.PoisonStore, c.Store) {
		errs = append(errs, fieldError("PoisonQueue", "%q is the queue being drained", c.PoisonQueue))
	}
	if c.StoreTimeout < 0 {
		errs = append(errs, fieldError("StoreTimeout", "%v: must be >= 0", c.StoreTimeout))
	}
	if err := hooks.Validate(ErrInvalidConfig, c.Hooks, hooks.Is[SentHook], hooks.Is[FailedHook], hooks.Is[PoisonedHook], hooks.Is[OutageHook]); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// tabled is implemented by SQL queues (sqlstore.Store): two values with the
// same database and table are one queue store.
type tabled interface {
	DB() *sql.DB
	Table() string
}

// sameTable reports whether a and b hold their rows in the same place: the
// same database and table for SQL queues, otherwise the same value.
func sameTable(a, b queue.Queue) bool {
	ta, okA := a.(tabled)
	tb, okB := b.(tabled)
	if okA && okB {
		return ta.DB() == tb.DB() && ta.Table() == tb.Table()
	}
	if reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == b
}

// sameDB returns a and b as TxQueues when they write to one database, so
// that a move between them can be one transaction.
func sameDB(a, b queue.Queue) (queue.TxQueue, queue.TxQueue, bool) {
	ta, okA := a.(queue.TxQueue)
	tb, okB := b.(queue.TxQueue)
	if !okA || !okB || ta.DB() == nil || ta.DB() != tb.DB() {
		return nil, nil, false
	}
	return ta, tb, true
}

// tableOf names a queue for logs: its table when it has one.
func tableOf(q queue.Queue) string {
	if t, ok := q.(tabled); ok {
		return t.Table()
	}
	return fmt.Sprintf("%T", q)
}
