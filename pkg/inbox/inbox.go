// Package inbox defines the store of processed messages behind the inbox
// middleware (middleware/inbox): a Key naming one message for one handler of
// one consumer group, and the Store and Entry interfaces that record it.
//
// The package is a leaf: it imports the standard library only.
// adapters/sqlstore (Inbox: PostgreSQL, MySQL/MariaDB, SQLite) and
// adapters/redisinbox implement Store; the middleware depends on this
// package, never on an adapter, so a program links a SQL driver or the Redis
// client only when it builds that store. The interface lives here rather than
// in the middleware package so that adapters implement it without importing
// middleware, as they implement pkg/queue.
package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors shared by every Store.
var (
	// ErrDuplicate is returned by Store.Begin when the key is already
	// recorded as processed: the handler must not run again.
	ErrDuplicate = errors.New("inbox: message already processed")
	// ErrInProgress is returned by Store.Begin when another run of the key
	// holds it and did not finish within the store's wait (stores without
	// row locks, such as Redis). The message is not lost: it is nacked (or
	// retried by redelivery) and tried again later. It may succeed then.
	ErrInProgress = errors.New("inbox: message being processed by another consumer")
	// ErrInvalidKey reports a key no store can record unchanged (see
	// ValidateKey). Never retried.
	ErrInvalidKey = errors.New("inbox: invalid key")
)

// MaxKeyPart is the most bytes of each Key field (the SQL columns are
// VARCHAR(255)).
const MaxKeyPart = 255

// Key names one message for one handler of one consumer group: two handlers,
// or two groups, consuming the same message each run it once.
type Key struct {
	ConsumerGroup string
	Handler       string
	UUID          string
}

// ValidateKey returns an error matching ErrInvalidKey unless every field is
// at most MaxKeyPart bytes of UTF-8 without control characters, and UUID is
// not empty.
func ValidateKey(k Key) error {
	if k.UUID == "" {
		return fmt.Errorf("%w: empty UUID", ErrInvalidKey)
	}
	for _, f := range []struct{ name, v string }{
		{"ConsumerGroup", k.ConsumerGroup}, {"Handler", k.Handler}, {"UUID", k.UUID},
	} {
		if len(f.v) > MaxKeyPart || !utf8.ValidString(f.v) || strings.IndexFunc(f.v, unicode.IsControl) >= 0 {
			return fmt.Errorf("%w: %s: at most %d bytes of UTF-8 without control characters", ErrInvalidKey, f.name, MaxKeyPart)
		}
	}
	return nil
}

// Store records which messages a handler has processed. Implementations are
// safe for concurrent use, also by several processes sharing the database.
type Store interface {
	// Begin claims key for one run of the handler. It returns ErrDuplicate
	// when key is recorded as processed (the record is kept for at least
	// the retention given when it was made), ErrInProgress when another
	// run holds key and the store gave up waiting for it, ErrInvalidKey for
	// a bad key, or another error when the store is unreachable.
	//
	// While an Entry is open no other Begin of the same key returns an
	// Entry: it waits (SQL: the row lock) or returns ErrInProgress. The
	// caller must end every Entry with Commit or Abort.
	Begin(ctx context.Context, key Key, retention time.Duration) (Entry, error)
	// Purge deletes at most limit records whose retention is over and
	// returns how many it deleted. Stores that expire records themselves
	// (Redis) return 0, nil. One call must hold its locks only briefly:
	// callers loop over small batches.
	Purge(ctx context.Context, limit int) (int, error)
}

// Entry is one claimed key.
type Entry interface {
	// Tx is the SQL transaction that holds the record, or nil when the
	// store has none. The handler writes through it so that its effects
	// and the record commit together.
	Tx() *sql.Tx
	// Commit records the key as processed, for the retention given to
	// Begin, together with the writes made through Tx. An error means the
	// record (and those writes) may or may not be stored.
	Commit(ctx context.Context) error
	// Abort releases the key without recording it and discards the writes
	// made through Tx, so a later delivery runs the handler again.
	Abort(ctx context.Context) error
}
