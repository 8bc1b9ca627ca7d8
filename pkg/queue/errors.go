package queue

import "errors"

// Sentinel errors shared by every Queue implementation (adapters/sqlstore
// exports the same values under its own names).
var (
	// ErrInvalidTopic reports a topic a row cannot carry (see ValidateTopic).
	ErrInvalidTopic = errors.New("queue: invalid topic")
	// ErrInvalidQueue reports a queue name outside the rules of ValidateQueue.
	ErrInvalidQueue = errors.New("queue: invalid queue")
	// ErrInvalidMessage reports a nil message, a bad UUID, negative attempts
	// or no rows where at least one is required.
	ErrInvalidMessage = errors.New("queue: invalid message")
	// ErrInvalidMetadata reports metadata a row cannot carry unchanged.
	ErrInvalidMetadata = errors.New("queue: invalid metadata")
	// ErrNotFound reports that no row has the id.
	ErrNotFound = errors.New("queue: row not found")
)

// IsInvalidInput reports whether err is one of the bad-input errors above:
// the row can never be stored, so trying again is pointless.
func IsInvalidInput(err error) bool {
	return errors.Is(err, ErrInvalidTopic) || errors.Is(err, ErrInvalidQueue) ||
		errors.Is(err, ErrInvalidMessage) || errors.Is(err, ErrInvalidMetadata)
}
