// Package redisinbox is the Redis store of middleware/inbox
// (pkg/inbox.Store) over github.com/redis/go-redis/v9.
//
// One string key per processed message: <Prefix><len>:<group><len>:<handler><uuid>.
// Begin claims it with SET NX and a lease (an in-progress marker with a
// random token); Commit overwrites it with a done marker whose TTL is the
// retention; Abort deletes it if it still holds this claim's token. Redis
// expires records by itself: Purge does nothing.
//
// # Guarantees
//
// Redis cannot join the handler's database transaction, so the record is
// written after the handler's effects, not with them. Precisely:
//
//   - At most one run of a key at a time, while the lease lasts: a second
//     delivery of a key held by a running handler waits (up to Wait) for it
//     to finish, then is acknowledged as a duplicate if it succeeded, runs if
//     it failed, and otherwise returns inbox.ErrInProgress (nacked or retried
//     later; nothing is lost). A handler running longer than Lease loses this
//     exclusion.
//   - A run whose Commit succeeded is never repeated within the retention:
//     later deliveries of the key are acknowledged without running.
//   - A process crash, or a Redis failure, between the handler's effect and
//     the Commit (a failed mark is logged, and the message acknowledged)
//     leaves no done marker: the message is redelivered and the
//     handler runs again once the lease has expired. The effect is then
//     applied twice unless the handler is idempotent for that window.
//
// So with Redis the inbox gives exactly-once effects only for handlers that
// tolerate a repeat after a crash between effect and mark (an idempotent
// write, or a check of their own); it removes every other duplicate
// (broker redeliveries, replays, publisher retries). For exactly-once effects
// in a SQL database, use sqlstore.Inbox with inbox.Tx.
package redisinbox

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/redis/go-redis/v9"

	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/inbox"
)

// Defaults.
const (
	// DefaultPrefix is Config.Prefix's default.
	DefaultPrefix = "reliamq:inbox:"
	// DefaultLease is Config.Lease's default.
	DefaultLease = time.Minute
	// DefaultWait is Config.Wait's default.
	DefaultWait = 5 * time.Second
	// DefaultPollInterval is Config.PollInterval's default.
	DefaultPollInterval = 20 * time.Millisecond
)

// ErrInvalidConfig is returned by New for a bad Config.
var ErrInvalidConfig = errors.New("redisinbox: invalid config")

// ErrStoreUnavailable matches every failure reported by Redis or the client.
var ErrStoreUnavailable = errors.New("redisinbox: store unavailable")

const doneValue = "done"

// Config configures a Store.
type Config struct {
	// Client is the Redis client (a *redis.Client, *redis.ClusterClient or
	// *redis.Ring). Required. The Store does not close it.
	Client redis.UniversalClient
	// Prefix starts every key. Default DefaultPrefix ("reliamq:inbox:").
	Prefix string
	// Lease is how long an in-progress marker lives: a crashed consumer's
	// claim ends after it, and a handler running longer may see a duplicate
	// run next to it. Default DefaultLease (1m); negative is invalid.
	Lease time.Duration
	// Wait is how long Begin waits for another run of the same key before
	// returning inbox.ErrInProgress. Default DefaultWait (5s); negative
	// means no wait.
	Wait time.Duration
	// PollInterval is how often Begin looks at a key held by another run.
	// Default DefaultPollInterval (20ms).
	PollInterval time.Duration
	// Clock drives the waits. Default clock.Real{}.
	Clock clock.Clock
}

func (c *Config) setDefaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.Wait == 0 {
		c.Wait = DefaultWait
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	c.Clock = clock.OrReal(c.Clock)
}

// Validate reports every problem at once, each error wrapping
// ErrInvalidConfig and naming its field.
func (c Config) Validate() error {
	var errs []error
	if err := nilcheck.Required(ErrInvalidConfig, "Client", c.Client); err != nil {
		errs = append(errs, err)
	}
	if c.Lease < 0 {
		errs = append(errs, fmt.Errorf("%w: Lease: %v: must be > 0", ErrInvalidConfig, c.Lease))
	}
	return errors.Join(errs...)
}

// Store is the Redis inbox store; see the package documentation. It is safe
// for concurrent use, also by several processes.
type Store struct {
	cfg    Config
	c      redis.UniversalClient
	logger watermill.LoggerAdapter
}

var _ inbox.Store = (*Store)(nil)

// New returns a Store.
func New(cfg Config, logger watermill.LoggerAdapter) (*Store, error) {
	if err := nilcheck.Optional(ErrInvalidConfig, "Clock", cfg.Clock); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Store{cfg: cfg, c: cfg.Client, logger: logger}, nil
}

// Key returns the Redis key of k.
func (s *Store) Key(k inbox.Key) string {
	return s.cfg.Prefix + strconv.Itoa(len(k.ConsumerGroup)) + ":" + k.ConsumerGroup +
		strconv.Itoa(len(k.Handler)) + ":" + k.Handler + k.UUID
}

// abortScript deletes the key only while it still holds this claim's token.
var abortScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// Begin implements inbox.Store; see the package documentation.
func (s *Store) Begin(ctx context.Context, key inbox.Key, retention time.Duration) (inbox.Entry, error) {
	if err := inbox.ValidateKey(key); err != nil {
		return nil, err
	}
	rk := s.Key(key)
	token := "run:" + randomToken()
	var deadline <-chan time.Time
	for {
		ok, err := s.c.SetNX(ctx, rk, token, s.cfg.Lease).Result()
		if err != nil {
			return nil, wrap("begin", err)
		}
		if ok {
			return &entry{s: s, key: rk, token: token, retention: retention}, nil
		}
		v, err := s.c.Get(ctx, rk).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue // released or expired in between: claim again
		case err != nil:
			return nil, wrap("begin", err)
		case v == doneValue:
			return nil, inbox.ErrDuplicate
		}
		// Another run holds the key.
		if deadline == nil {
			if s.cfg.Wait <= 0 {
				return nil, inbox.ErrInProgress
			}
			deadline = s.cfg.Clock.After(s.cfg.Wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, inbox.ErrInProgress
		case <-s.cfg.Clock.After(s.cfg.PollInterval):
		}
	}
}

// Purge implements inbox.Store: Redis expires records itself.
func (s *Store) Purge(context.Context, int) (int, error) { return 0, nil }

type entry struct {
	s         *Store
	key       string
	token     string
	retention time.Duration
}

func (e *entry) Tx() *sql.Tx { return nil }

// Commit marks the key done for the retention, whoever holds it now: the
// handler succeeded. A failed mark is logged and not returned: the effect
// happened, so the router must acknowledge the message (an error would make
// it run again for certain); only a later copy may run again, as after a
// crash before the mark.
func (e *entry) Commit(ctx context.Context) error {
	if err := e.s.c.Set(ctx, e.key, doneValue, e.retention).Err(); err != nil {
		e.s.logger.Error("Could not mark a processed message in Redis; a later copy may run the handler again", wrap("commit", err), nil)
	}
	return nil
}

func (e *entry) Abort(ctx context.Context) error {
	return wrap("abort", abortScript.Run(ctx, e.s.c, []string{e.key}, e.token).Err())
}

// StoreError is a Redis failure during Op. It matches ErrStoreUnavailable
// and unwraps to the client's error.
type StoreError struct {
	Op  string
	Err error
}

func (e *StoreError) Error() string { return "redisinbox: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the client's error.
func (e *StoreError) Unwrap() error { return e.Err }

// Is matches ErrStoreUnavailable.
func (e *StoreError) Is(target error) bool { return target == ErrStoreUnavailable }

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &StoreError{Op: op, Err: err}
}

func randomToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
