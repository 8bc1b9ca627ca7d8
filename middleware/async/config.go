package async

import (
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/middleware/journal"
	"github.com/reliamq/reliamq/pkg/clock"
)

// Defaults, the seed service's thread-pool numbers.
const (
	DefaultCoreWorkers   = 10
	DefaultMaxWorkers    = 50
	DefaultQueueCapacity = 200
	DefaultKeepAlive     = 30 * time.Second
	DefaultCloseTimeout  = 60 * time.Second
)

// FullPolicy says what Publish does when the queue is full and no worker can
// take the call (see Config.MaxWorkers).
type FullPolicy int

const (
	// CallerRuns sends on the calling goroutine: Publish blocks for the send
	// and returns its error. It slows producers down to the pool's pace
	// without losing anything. The default, as in the seed service.
	CallerRuns FullPolicy = iota
	// Block waits for room in the queue until the context of the first
	// message ends (Publish then returns an error matching the context error)
	// or the publisher is closed (ErrClosed).
	Block
	// Reject returns ErrQueueFull at once; the message was not taken.
	Reject
)

// String returns "caller-runs", "block" or "reject".
func (f FullPolicy) String() string {
	switch f {
	case CallerRuns:
		return "caller-runs"
	case Block:
		return "block"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("FullPolicy(%d)", int(f))
}

// ResultHook observes the outcome of every Publish call the pool took or the
// caller ran. Put values implementing it in Config.Hooks; a value that
// implements no hook interface of this package is rejected by Validate.
type ResultHook interface {
	// OnAsyncResult receives exactly one Result for each call taken by the
	// pool or run by the caller (CallerRuns). Calls refused with an error
	// (bad input, ErrQueueFull, ErrClosed, a Block whose context ended) get
	// none: their error is the outcome. It runs on the worker that sent the
	// call, on the calling goroutine for CallerRan, and for leftovers on
	// Close's goroutine (or the worker's, for a send Close's timeout cut
	// off); it must be safe for concurrent use and fast (the worker sends
	// nothing else while it runs), and must not modify the messages.
	OnAsyncResult(Result)
}

// Result is the outcome of one Publish call taken by the pool (or run by the
// caller under CallerRuns), as ResultHook receives it.
type Result struct {
	// Topic and Messages are the arguments of the Publish call. Treat them as
	// read-only.
	Topic    string
	Messages []*message.Message
	// Err is nil when the inner publisher accepted the messages, or when
	// Leftover is true and the Leftovers publisher accepted them. Otherwise it
	// is the inner publisher's error, or an error matching ErrNotSent for a
	// leftover that could not be handed over.
	Err error
	// CallerRan is true when the queue was full and the calling goroutine sent
	// the messages itself (CallerRuns); Publish also returned Err.
	CallerRan bool
	// Leftover is true when the messages were still queued (or were cut off
	// in flight) when Close's timeout ran out, and were handed to Leftovers
	// (Err == nil) or could not be (Err matches ErrNotSent).
	Leftover bool
}

// Config configures a Publisher. The zero value gives the defaults.
type Config struct {
	// CoreWorkers is the number of workers kept alive while idle. Default 10.
	// Workers start lazily, one per Publish, until CoreWorkers are running.
	CoreWorkers int
	// MaxWorkers bounds the number of workers; must be >= CoreWorkers.
	// Default max(50, CoreWorkers). A worker above CoreWorkers is started
	// when a call finds the queue full while every running worker is busy
	// sending (a worker that is not takes the next queued call in a moment,
	// so another would only add a goroutine), or under Reject whenever the
	// queue is full; it takes that call and exits after KeepAlive without
	// work.
	MaxWorkers int
	// QueueCapacity is the number of Publish calls that can wait for a
	// worker. Default 200.
	QueueCapacity int
	// KeepAlive is how long a worker above CoreWorkers waits for work before
	// exiting. Default 30s.
	KeepAlive time.Duration
	// FullPolicy applies when the queue is full and no extra worker starts
	// (see MaxWorkers). Default CallerRuns.
	FullPolicy FullPolicy
	// CloseTimeout bounds how long Close waits for queued and in-flight work.
	// Default 60s. When it runs out, in-flight sends are cancelled through
	// their context and everything not sent goes to Leftovers.
	CloseTimeout time.Duration
	// Leftovers receives, at Close, every Publish call that was not sent in
	// time: the fallback store in async(fallback(retry(broker))). Optional:
	// without it each such call is reported to the ResultHooks with an error
	// matching ErrNotSent. Close does not close Leftovers.
	Leftovers message.Publisher
	// Hooks are observers: values implementing ResultHook. Each runs, in
	// order, for every Publish call taken by the pool or run by the caller
	// (see ResultHook). Optional; a nil value or one implementing no hook
	// interface is an invalid config.
	Hooks []any
	// Clock times KeepAlive and CloseTimeout. Default clock.Real{}.
	Clock clock.Clock
	// Journal, when set, makes the publisher crash-safe: Publish returns
	// once the messages are committed to this durable journal, and its
	// relays send them through the inner publisher (a journal.Publisher
	// over the inner publisher; see middleware/journal). A process crash then
	// loses nothing Publish accepted. The pool fields (workers, queue,
	// FullPolicy, KeepAlive) and Hooks are not used: the journal is the
	// queue, its relays are the workers (Journal.Relays ×
	// Journal.Relay.Concurrency sends at once), their outcomes go to
	// Journal.Relay.Hooks, and Close waits up to Journal.CloseTimeout for
	// the journal to empty, keeping the rest for the next start. Leftovers
	// must be nil. Default nil: the in-memory pool.
	Journal *journal.Config
}

func (c *Config) setDefaults() {
	if c.CoreWorkers == 0 {
		c.CoreWorkers = DefaultCoreWorkers
	}
	if c.MaxWorkers == 0 {
		c.MaxWorkers = max(DefaultMaxWorkers, c.CoreWorkers)
	}
	if c.QueueCapacity == 0 {
		c.QueueCapacity = DefaultQueueCapacity
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	c.Clock = clock.OrReal(c.Clock)
	c.Hooks = append([]any(nil), c.Hooks...)
}

// Validate reports every invalid field at once, each error wrapping
// ErrInvalidConfig and naming its field ("async: invalid config: <Field>:
// <reason>"). It is called by NewPublisher
// after the defaults are applied, so zero values are valid there.
func (c Config) Validate() error {
	var errs []error
	if c.CoreWorkers < 1 {
		errs = append(errs, fmt.Errorf("%w: CoreWorkers: %d: must be >= 1", ErrInvalidConfig, c.CoreWorkers))
	}
	if c.MaxWorkers < c.CoreWorkers {
		errs = append(errs, fmt.Errorf("%w: MaxWorkers: %d: must be >= CoreWorkers %d", ErrInvalidConfig, c.MaxWorkers, c.CoreWorkers))
	}
	if c.QueueCapacity < 1 {
		errs = append(errs, fmt.Errorf("%w: QueueCapacity: %d: must be >= 1", ErrInvalidConfig, c.QueueCapacity))
	}
	if c.KeepAlive <= 0 {
		errs = append(errs, fmt.Errorf("%w: KeepAlive: %v: must be > 0", ErrInvalidConfig, c.KeepAlive))
	}
	if c.CloseTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%w: CloseTimeout: %v: must be > 0", ErrInvalidConfig, c.CloseTimeout))
	}
	if c.Journal != nil && c.Leftovers != nil {
		errs = append(errs, fmt.Errorf("%w: Leftovers: not used with Journal, which keeps every message", ErrInvalidConfig))
	}
	switch c.FullPolicy {
	case CallerRuns, Block, Reject:
	default:
		errs = append(errs, fmt.Errorf("%w: FullPolicy: %d: must be CallerRuns, Block or Reject", ErrInvalidConfig, int(c.FullPolicy)))
	}
	if err := hooks.Validate(ErrInvalidConfig, c.Hooks, hooks.Is[ResultHook]); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
