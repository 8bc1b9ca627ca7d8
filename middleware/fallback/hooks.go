package fallback

import (
	"time"

	"github.com/reliamq/reliamq/pkg/queue"
)

// Hooks are observers set in Config.Hooks and RelayConfig.Hooks. A hook value
// implements one or more of the interfaces below; a nil value, or one
// implementing none of the interfaces its component uses, is rejected by
// Validate (internal/hooks, the one observer model of reliamq). Hooks run
// synchronously on the goroutine named in each method's doc, so they must be
// fast, non-blocking and safe for concurrent use. They must not modify the
// message data they are shown.

// StoredHook observes messages the Publisher stored after a failed send.
type StoredHook interface {
	// OnFallbackStored runs on the Publish caller's goroutine once per stored
	// message, after the row is committed.
	OnFallbackStored(StoredParams)
}

// StoreFailedHook observes messages that were neither sent nor stored.
type StoreFailedHook interface {
	// OnFallbackStoreFailed runs on the Publish caller's goroutine once per
	// message, before Publish returns ErrNotStored.
	OnFallbackStoreFailed(StoreFailedParams)
}

// StoredParams describes one stored message.
type StoredParams struct {
	Topic   string
	UUID    string
	SendErr error // the send error that made the Publisher store the message
}

// StoreFailedParams describes one message that was neither sent nor stored.
type StoreFailedParams struct {
	Topic    string
	UUID     string
	SendErr  error
	StoreErr error
}

// SentHook observes rows the relay delivered.
type SentHook interface {
	// OnRelaySent runs on a relay worker goroutine after the publisher
	// accepted the message, before its row is deleted.
	OnRelaySent(SentParams)
}

// FailedHook observes failed relay sends that leave the row for later.
type FailedHook interface {
	// OnRelayFailed runs on the relay goroutine after the row was rescheduled.
	OnRelayFailed(FailedParams)
}

// PoisonedHook observes rows moved to the poison destination.
type PoisonedHook interface {
	// OnRelayPoisoned runs on the relay goroutine after the move.
	OnRelayPoisoned(PoisonedParams)
}

// OutageHook observes the relay deciding the broker is down, or back.
type OutageHook interface {
	// OnRelayOutage runs on the relay goroutine when the state changes.
	OnRelayOutage(OutageParams)
}

// SentParams describes one delivered row.
type SentParams struct {
	RowID    int64
	Topic    string
	UUID     string
	Attempt  int           // relay attempt that succeeded, counting from 1
	Age      time.Duration // time since the row was created
	Duration time.Duration // how long the send took
	// StartedAt is when the send started, on the relay's Clock.
	StartedAt time.Time
	// Row is the row as claimed (its due time, creation time, metadata and
	// payload). Read only.
	Row queue.Row
}

// FailedParams describes one failed relay send.
type FailedParams struct {
	RowID         int64
	Topic         string
	UUID          string
	Attempt       int // relay attempt that failed, counting from 1
	Err           error
	NextAttemptAt time.Time
	// StartedAt is when the failed send started, on the relay's Clock.
	StartedAt time.Time
	// Row is the row as claimed, before the failure was recorded. Read only.
	Row queue.Row
}

// PoisonedParams describes one poisoned row.
type PoisonedParams struct {
	RowID    int64
	Topic    string
	UUID     string
	Attempts int    // relay attempts made, including the last one
	Reason   string // ReasonMaxAttempts or ReasonPermanent
	Err      error  // the last send error
	// Row is the row as claimed, before the move. Read only.
	Row queue.Row
}

// OutageParams describes a change of the relay's outage state.
type OutageParams struct {
	// Down is true when the relay stopped claiming batches and started
	// probing with one row; false when a probe succeeded.
	Down bool
	// ConsecutiveFailures is the run of failed sends that led to the change
	// (0 when Down is false).
	ConsecutiveFailures int
}
