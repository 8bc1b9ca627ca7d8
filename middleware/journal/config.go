package journal

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/queue"
)

// Defaults.
const (
	// DefaultQueue is the store queue the journal writes when Config.Queue
	// is empty. A fallback table's relay drains queue "", so the journal
	// keeps apart from it in a shared table.
	DefaultQueue = "journal"
	// DefaultMaxBatch is the most messages one group commit writes.
	DefaultMaxBatch = 1000
	// DefaultRelays is the number of relays draining the journal.
	DefaultRelays = 2
	// DefaultConcurrency is each relay's concurrent sends when
	// Config.Relay.Concurrency is zero: with DefaultRelays, as many sends at
	// once as the async pool's MaxWorkers (50).
	DefaultConcurrency = 25
	// DefaultStoreTimeout bounds one commit (except on SQLite: see
	// Config.StoreTimeout).
	DefaultStoreTimeout = 10 * time.Second
	// DefaultCloseTimeout bounds how long Close waits for the journal to
	// empty, as async.DefaultCloseTimeout does for its queue.
	DefaultCloseTimeout = 60 * time.Second
)

// ErrInvalidConfig matches every error New returns for a bad Config or a
// nil inner publisher.
var ErrInvalidConfig = errors.New("journal: invalid config")

// Config configures a Publisher. Only Store is required.
type Config struct {
	// Store is the journal: a durable queue in a local database, for
	// example a sqlstore.Store over an SQLite file opened with sqlite.Open
	// (see the package documentation for its durability settings).
	// Required. The Publisher never closes its database.
	Store queue.Queue
	// Queue is the store queue the journal writes and drains. Default
	// DefaultQueue ("journal"). On a database several processes share,
	// give each process its own Queue or Owner (see Owner).
	Queue string
	// Owner is the lease owner of the journal's relay. It must stay the
	// same across restarts of the process: at start the journal releases
	// the rows still leased by Owner (a relay that died with them in hand)
	// so they are sent at once instead of after the store's LeaseTimeout.
	// Default "journal:<host name>:<Queue>".
	Owner string
	// MaxBatch bounds a commit: it takes the waiting calls, oldest first,
	// while their messages fit in MaxBatch (a single larger call is written
	// alone). Publish calls that arrive while a commit runs wait for the
	// next one and are written together, in one transaction. Default
	// DefaultMaxBatch (1000).
	MaxBatch int
	// StoreTimeout bounds each commit; Publish returns an error matching
	// ErrNotJournaled when it runs out. Default DefaultStoreTimeout (10s),
	// except for the commits to a store that bounds its own writes
	// (queue.BoundedWriter: an SQLite sqlstore.Store): left zero there,
	// a commit runs without a context deadline, because the SQLite driver
	// (modernc.org/sqlite) starts a goroutine per statement to watch a
	// cancellable context, which cost a single producer about a fifth of
	// its throughput. The commit is then bounded by SQLite itself: a local
	// write, whose wait for a lock held by another connection or process
	// is bounded by the busy timeout (5 s with sqlite.Open), and the
	// connection is otherwise held only by the journal's own statements.
	// Set StoreTimeout to bound SQLite commits by a deadline all the same.
	// The relays' store calls keep their own timeouts (Relay.StoreTimeout).
	StoreTimeout time.Duration
	// CloseTimeout bounds how long Close waits for the relay to empty the
	// journal; what is left stays in the store and is sent after the next
	// start. Default DefaultCloseTimeout (60s).
	CloseTimeout time.Duration
	// Checker, if set, is asked before a message is written: a Publish it
	// refuses is refused with its error (permanent) and nothing is written.
	// Default: the inner publisher, when it implements msgcheck.Checker (as
	// rocketmq.Publisher does), so that the journal never keeps a message
	// its relay could only poison.
	Checker msgcheck.Checker
	// Relays is the number of relays draining the journal, each with
	// Config.Relay. A relay works in rounds (claim a batch, send it, delete
	// what was sent); with two, one sends while the other claims or
	// deletes. Default DefaultRelays (2).
	Relays int
	// Relay configures the relays that send the journal's rows through the
	// inner publisher and delete them (policy, batch size, outage probing,
	// poison queue, hooks: see fallback.RelayConfig). Its Store, Queue,
	// Publisher and Owner are the journal's: leave them zero. Concurrency
	// defaults to DefaultConcurrency (25) here.
	Relay fallback.RelayConfig
	// Hooks are CommitHook values.
	Hooks []any
}

func (c *Config) setDefaults() {
	if c.Queue == "" {
		c.Queue = DefaultQueue
	}
	if c.Owner == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		c.Owner = "journal:" + host + ":" + c.Queue
		if len(c.Owner) > 255 {
			c.Owner = c.Owner[:255]
		}
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = DefaultStoreTimeout
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.Relays == 0 {
		c.Relays = DefaultRelays
	}
	if c.Relay.Concurrency == 0 {
		c.Relay.Concurrency = DefaultConcurrency
	}
}

// Validate reports every problem of the config at once, each error wrapping
// ErrInvalidConfig and naming its field. The relay's own fields are checked
// by fallback.NewRelay when New builds it.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, fieldError("Store", "required"))
	}
	if err := queue.ValidateQueue(c.Queue); err != nil {
		errs = append(errs, fieldError("Queue", "%w", err))
	}
	if len(c.Owner) > 255 {
		errs = append(errs, fieldError("Owner", "longer than 255 bytes"))
	}
	if c.MaxBatch < 1 {
		errs = append(errs, fieldError("MaxBatch", "%d: must be >= 1", c.MaxBatch))
	}
	if c.Relays < 1 {
		errs = append(errs, fieldError("Relays", "%d: must be >= 1", c.Relays))
	}
	if c.StoreTimeout <= 0 {
		errs = append(errs, fieldError("StoreTimeout", "%v: must be > 0", c.StoreTimeout))
	}
	if c.CloseTimeout <= 0 {
		errs = append(errs, fieldError("CloseTimeout", "%v: must be > 0", c.CloseTimeout))
	}
	if c.Relay.Store != nil {
		errs = append(errs, fieldError("Relay.Store", "set by the journal (Store); leave it nil"))
	}
	if c.Relay.Queue != "" {
		errs = append(errs, fieldError("Relay.Queue", "set by the journal (Queue); leave it empty"))
	}
	if c.Relay.Publisher != nil {
		errs = append(errs, fieldError("Relay.Publisher", "set by the journal (the inner publisher); leave it nil"))
	}
	if c.Relay.Owner != "" {
		errs = append(errs, fieldError("Relay.Owner", "set by the journal (Owner); leave it empty"))
	}
	if err := hooks.Validate(ErrInvalidConfig, c.Hooks, hooks.Is[CommitHook]); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validateNils(inner any, cfg Config) error {
	return errors.Join(nilcheck.Required(ErrInvalidConfig, "inner publisher", inner),
		nilcheck.Optional(ErrInvalidConfig, "Store", cfg.Store),
		nilcheck.Optional(ErrInvalidConfig, "Checker", cfg.Checker))
}

// fieldError reports one config problem: "journal: invalid config: <Field>:
// <reason>" (format may use %w).
func fieldError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidConfig, field}, args...)...)
}
