package fallback

import (
	"errors"
	"fmt"

	"github.com/reliamq/reliamq/pkg/policy"
)

// Sentinel errors.
var (
	// ErrInvalidConfig is returned by the constructors for a bad config.
	ErrInvalidConfig = errors.New("fallback: invalid config")
	// ErrClosed is returned by Publisher.Publish after Close, marked
	// policy.Permanent.
	ErrClosed = policy.NewClosedError("fallback: publisher closed")
	// ErrPublisherClosed is returned by Relay.Run when the relay's Publisher
	// (or PoisonPublisher) answered that it is closed (an error matching
	// policy.ErrClosed, as every reliamq publisher's ErrClosed does). The
	// relay stops: a closed publisher is not a message's fault, so no row is
	// poisoned or charged an attempt; the rows stay in the store for the next
	// relay. The returned error also matches the publisher's own error.
	ErrPublisherClosed = errors.New("fallback: relay publisher closed")
	// ErrNotStored means the send failed and storing the message failed too:
	// the message was neither sent nor stored, and the caller still owns it.
	ErrNotStored = errors.New("fallback: message neither sent nor stored")
	// ErrAlreadyRunning is returned by Relay.Run while another Run of the
	// same Relay is active.
	ErrAlreadyRunning = errors.New("fallback: relay already running")
)

// NotStoredError reports both causes when a failed send could not be stored.
// It matches ErrNotStored, and errors.Is/As also see SendErr and StoreErr.
type NotStoredError struct {
	Topic    string
	UUIDs    []string
	SendErr  error
	StoreErr error
}

func (e *NotStoredError) Error() string {
	return fmt.Sprintf("fallback: publish to %s failed (%v) and storing %d message(s) failed too (%v)",
		e.Topic, e.SendErr, len(e.UUIDs), e.StoreErr)
}

// Is matches ErrNotStored.
func (e *NotStoredError) Is(target error) bool { return target == ErrNotStored }

// Unwrap returns both causes.
func (e *NotStoredError) Unwrap() []error { return []error{e.SendErr, e.StoreErr} }

// fieldError reports one config problem: ErrInvalidConfig, the field, the
// reason ("fallback: invalid config: <Field>: <reason>"; format may use %w).
func fieldError(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: "+format, append([]any{ErrInvalidConfig, field}, args...)...)
}
