package inbox

import (
	"errors"
	"fmt"
	"time"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/inbox"
)

// Defaults.
const (
	// DefaultRetention is Config.Retention's default: a week, longer than
	// RocketMQ's whole retry schedule (4h46m) and than most replays.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultPurgeInterval is Config.PurgeInterval's default.
	DefaultPurgeInterval = time.Minute
	// DefaultPurgeBatch is Config.PurgeBatch's default.
	DefaultPurgeBatch = 500
	// DefaultPurgePause is Config.PurgePause's default.
	DefaultPurgePause = 10 * time.Millisecond
)

// Config configures one Inbox, which serves one handler of one consumer
// group. Zero values take the documented defaults; Validate reports every
// remaining problem at once.
type Config struct {
	// ConsumerGroup and Handler name the handler whose runs are recorded:
	// the record's key is (ConsumerGroup, Handler, message UUID), so other
	// handlers and groups consuming the same message run it once each.
	// Both required, at most 255 bytes of UTF-8 without control characters.
	// With middleware/redelivery, use the same values as its Config.
	ConsumerGroup string
	Handler       string
	// Store records processed messages: an *sqlstore.Inbox (the handler's
	// writes and the record commit in one transaction) or a
	// *redisinbox.Store. Required. Inbox does not close it.
	Store inbox.Store
	// Retention is how long a processed message is remembered: a copy
	// delivered later than this after the first run may run the handler
	// again. Default DefaultRetention (7 days); negative is invalid.
	Retention time.Duration
	// PurgeInterval is how often the background purger deletes expired
	// records (SQL stores; Redis expires them itself). Default
	// DefaultPurgeInterval (1m); negative disables the purger (call Purge
	// yourself, or let another Inbox on the same table purge it: one purger
	// per table is enough, several are safe).
	PurgeInterval time.Duration
	// PurgeBatch is the most records one purge statement deletes, so that
	// no statement holds locks long. Default DefaultPurgeBatch (500);
	// negative is invalid.
	PurgeBatch int
	// PurgePause is the wait between two batches of one purge, which lets
	// handlers' writes through on a busy (or single-writer SQLite)
	// database. Default DefaultPurgePause (10ms); negative means none.
	PurgePause time.Duration
	// Clock drives the purger's waits. Default clock.Real{}.
	Clock clock.Clock
	// Hooks observe the inbox; each value must implement at least one of
	// DuplicateHook and PurgedHook. DuplicateHook runs on the handler's
	// goroutine, PurgedHook on the purger's: they must be fast, non-blocking
	// and safe for concurrent use.
	Hooks []any
}

func (c *Config) setDefaults() {
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.PurgeInterval == 0 {
		c.PurgeInterval = DefaultPurgeInterval
	}
	if c.PurgeBatch == 0 {
		c.PurgeBatch = DefaultPurgeBatch
	}
	if c.PurgePause == 0 {
		c.PurgePause = DefaultPurgePause
	}
	c.Clock = clock.OrReal(c.Clock)
	c.Hooks = append([]any(nil), c.Hooks...)
}

// Validate reports every problem of c at once, each error wrapping
// ErrInvalidConfig and naming its field ("inbox: invalid config: <Field>:
// <reason>"). New calls it after applying defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidConfig, field}, args...)...))
	}
	if c.ConsumerGroup == "" {
		bad("ConsumerGroup", "required")
	}
	if c.Handler == "" {
		bad("Handler", "required")
	}
	// A probe key checks both names with the store's own rules.
	if err := inbox.ValidateKey(inbox.Key{ConsumerGroup: c.ConsumerGroup, Handler: c.Handler, UUID: "x"}); err != nil {
		bad("ConsumerGroup/Handler", "%v", err)
	}
	if err := nilcheck.Required(ErrInvalidConfig, "Store", c.Store); err != nil {
		errs = append(errs, err)
	}
	if c.Retention < 0 {
		bad("Retention", "%v: must be > 0", c.Retention)
	}
	if c.PurgeBatch < 0 {
		bad("PurgeBatch", "%d: must be > 0", c.PurgeBatch)
	}
	if err := hooks.Validate(ErrInvalidConfig, c.Hooks, hooks.Is[DuplicateHook], hooks.Is[PurgedHook]); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
