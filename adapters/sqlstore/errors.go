package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

// Sentinel errors. The bad-input errors and ErrNotFound are the values of
// pkg/queue (queue.ErrInvalidTopic, ...), so code written against the queue
// interface matches them without importing this package. Bad input (the Invalid errors, and ErrClosed) is detected
// before any SQL is sent, must never be retried and is marked
// policy.Permanent; ErrStoreUnavailable marks a failure of the
// database itself, which may succeed later.
var (
	// ErrInvalidConfig is returned by New and NewPublisher for a bad config.
	ErrInvalidConfig = errors.New("sqlstore: invalid config")
	// ErrInvalidTable is returned for a table name that does not match
	// ^[a-zA-Z_][a-zA-Z0-9_]{0,62}$. Table names are the only identifiers that
	// reach SQL text, so this check is what keeps them safe.
	ErrInvalidTable = errors.New("sqlstore: invalid table name")
	// ErrInvalidTopic is returned by writes for an empty topic, a topic longer
	// than 255 bytes or one with characters outside [a-zA-Z0-9._%|:/-].
	ErrInvalidTopic = queue.ErrInvalidTopic
	// ErrInvalidQueue is returned for a queue name longer than 255 bytes or one
	// holding invalid UTF-8 or control characters.
	ErrInvalidQueue = queue.ErrInvalidQueue
	// ErrInvalidMessage is returned for a nil message, an empty UUID (which
	// also matches msgcheck.ErrEmptyUUID), a UUID longer than 255 bytes or
	// holding invalid UTF-8 or control characters (msgcheck.ErrInvalidUUID),
	// or no messages at all where at least one is required.
	ErrInvalidMessage = queue.ErrInvalidMessage
	// ErrInvalidMetadata is returned for metadata with invalid UTF-8 or NUL
	// characters, which JSON (and so the metadata column) cannot carry
	// unchanged, or with the bytes \x01 or \x02, which RocketMQ cannot: the
	// rules of msgcheck.Metadata, shared by every reliamq publisher. It also
	// matches msgcheck.ErrInvalidMetadata.
	ErrInvalidMetadata = queue.ErrInvalidMetadata
	// ErrMissingTable is returned by New, without Config.AutoInitialize, when
	// the database answers that the table, or a column the store uses, does
	// not exist. Create it with InitializeSchema or the SQL of SchemaSQL.
	ErrMissingTable = errors.New("sqlstore: missing table")
	// ErrStoreUnavailable matches every failure reported by the database or
	// its driver (connection refused, lock timeout, disk full...). The
	// operation did not happen, or for a commit whose answer was lost, may
	// have happened.
	ErrStoreUnavailable = errors.New("sqlstore: store unavailable")
	// ErrNotFound is returned by Get, Reschedule and Requeue when no row has
	// the id.
	ErrNotFound = queue.ErrNotFound
	// ErrInvalidFilter is returned by List for a Filter that no query can
	// carry unchanged: a negative OlderThan, or an ErrorContains with invalid
	// UTF-8 or NUL characters (which error columns never hold). It is marked
	// policy.Permanent like the other bad-input errors.
	ErrInvalidFilter = errors.New("sqlstore: invalid filter")
	// ErrClosed is returned by Publisher.Publish after Close. It also matches
	// policy.ErrClosed.
	ErrClosed = policy.NewClosedError("sqlstore: publisher closed")
)

// StoreError is a database failure during Op. It matches ErrStoreUnavailable
// with errors.Is and unwraps to the driver's error.
type StoreError struct {
	Op    string // "insert", "claim", "delete", "reschedule", ...
	Table string
	Err   error
}

func (e *StoreError) Error() string {
	return fmt.Sprintf("sqlstore: %s on table %s: %v", e.Op, e.Table, e.Err)
}

// Unwrap returns the driver's error.
func (e *StoreError) Unwrap() error { return e.Err }

// Is matches ErrStoreUnavailable.
func (e *StoreError) Is(target error) bool { return target == ErrStoreUnavailable }

// IsRetryable reports whether err is a store failure that may succeed if the
// operation is tried again: true for ErrStoreUnavailable, false for bad input,
// for context cancellation and for nil.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, ErrStoreUnavailable)
}

// invalid reports bad input: it matches sentinel and is marked
// policy.Permanent, so no reliamq stage retries it.
func invalid(sentinel error, format string, args ...any) error {
	return policy.Permanent(fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...))
}

func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &StoreError{Op: op, Table: s.table, Err: err}
}

// fieldError reports one config problem: ErrInvalidConfig, the field, the
// reason ("sqlstore: invalid config: <Field>: <reason>"; format may use %w).
func fieldError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidConfig, field}, args...)...)
}
