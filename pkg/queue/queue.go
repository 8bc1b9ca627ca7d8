package queue

import (
	"context"
	"database/sql"
	"time"
)

// ClaimRequest asks for due rows of one queue.
type ClaimRequest struct {
	// Queue to claim from ("" is a valid queue).
	Queue string
	// Owner is written to the lease; default the store's Owner().
	Owner string
	// Limit is the most rows returned; default 100.
	Limit int
}

// Stats describes one queue.
type Stats struct {
	// Backlog is the number of rows in the queue, due or not, leased or not.
	Backlog int64
	// Due is the number of rows whose next attempt time has come.
	Due int64
	// Leased is the number of rows currently claimed.
	Leased int64
	// Oldest is the CreatedAt of the oldest row; zero when the queue is empty.
	Oldest time.Time
}

// Queue is a durable queue of rows, safe for concurrent use. The fallback
// Publisher and Relay and Durable redelivery use only these methods.
//
// A row written by Insert stays until Delete removes it. Claim hands a due
// row to one claimer at a time until its lease (LeaseTimeout) ends; a
// claimer that dies without Delete, Reschedule or Requeue only delays the
// row by the lease. Consumers of claimed rows must tolerate duplicates.
type Queue interface {
	// Insert stores rows atomically: all of them or, on error, none. Zero
	// NextAttemptAt and CreatedAt become now. Bad input matches one of the
	// Invalid errors and nothing is stored.
	Insert(ctx context.Context, rows ...Row) error
	// Claim leases up to req.Limit due, unleased rows of req.Queue, oldest
	// due first.
	Claim(ctx context.Context, req ClaimRequest) ([]Row, error)
	// Delete removes the rows with ids; those already gone are ignored.
	Delete(ctx context.Context, ids ...int64) error
	// Reschedule records a failed attempt on row id (attempts+1, lastErr)
	// and makes it due at next, releasing the lease. ErrNotFound if gone.
	Reschedule(ctx context.Context, id int64, next time.Time, lastErr string) error
	// Requeue releases the leases of ids and makes them due at next without
	// counting an attempt. ErrNotFound if none of the rows exists.
	Requeue(ctx context.Context, next time.Time, ids ...int64) error
	// Stats counts the rows of queue.
	Stats(ctx context.Context, queue string) (Stats, error)
	// Owner is the lease owner used when a ClaimRequest names none.
	Owner() string
	// LeaseTimeout is how long a claim lasts.
	LeaseTimeout() time.Duration
}

// BoundedWriter is an optional interface of a Queue. WritesBounded reports
// that the queue's writes end on their own within a bound the queue
// enforces (an embedded database's lock timeout, such as SQLite's busy
// timeout), so a caller may write with a context that has no deadline. Some
// drivers (modernc.org/sqlite) watch a cancellable context with a goroutine
// per statement, which a hot path then saves.
type BoundedWriter interface {
	WritesBounded() bool
}

// TxQueue is a Queue in an SQL database whose writes can join the caller's
// transaction: the outbox inserts inside the application's transaction, and
// the relay moves a row to a poison queue of the same database atomically.
type TxQueue interface {
	Queue
	// DB is the database the queue writes to; transactions passed to
	// InsertTx and DeleteTx must belong to it.
	DB() *sql.DB
	// InsertTx stores rows inside tx: they exist if and only if tx commits.
	InsertTx(ctx context.Context, tx *sql.Tx, rows ...Row) error
	// DeleteTx removes the rows with ids inside tx.
	DeleteTx(ctx context.Context, tx *sql.Tx, ids ...int64) error
}

// Filter selects rows for Inspector.List. Conditions combine with AND; the
// zero value of each field means "no condition" (except Queue, see
// AllQueues). Every value reaches the store as data, never as query text.
type Filter struct {
	// Queue restricts the rows to one queue unless AllQueues is set.
	Queue string
	// AllQueues lists rows of every queue.
	AllQueues bool
	// Topic, if not empty, restricts the rows to one topic.
	Topic string
	// UUID, if not empty, restricts the rows to one message UUID.
	UUID string
	// OlderThan, if positive, restricts the rows to those created at least
	// this long ago on the store's clock (CreatedAt <= now - OlderThan).
	// Negative is invalid.
	OlderThan time.Duration
	// ErrorContains, if not empty, restricts the rows to those whose
	// FirstError or LastError contains this text, compared byte for byte
	// (case-sensitive; no wildcards). Stores may keep only a prefix of long
	// errors (sqlstore: MaxErrorLen bytes), so text cut from a longer error
	// does not match. Error text kept in metadata (dead letters' LastError
	// key) is not searched.
	ErrorContains string
	// AfterID lists rows with id > AfterID, for paging.
	AfterID int64
	// Limit is the most rows returned; default 100.
	Limit int
}

// Inspector reads rows for operators without claiming them.
type Inspector interface {
	// List returns rows matching f in id order.
	List(ctx context.Context, f Filter) ([]Row, error)
	// Get returns the row with id, whatever its queue; ErrNotFound if none.
	Get(ctx context.Context, id int64) (Row, error)
}
