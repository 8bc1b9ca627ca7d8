package redelivery

import (
	"errors"
	"fmt"
	"time"
)

// RetryAfterError is the verdict "retry this message after Delay". A handler
// returns it (directly or wrapped) through RetryAfter or RetryLater; the
// middleware finds it with errors.As. The retry still counts towards the
// policy's MaxAttempts.
type RetryAfterError struct {
	// Delay is the wait before the next attempt. Negative values mean zero.
	// UsePolicy set means Delay is ignored and the policy's schedule decides.
	Delay time.Duration
	// UsePolicy is true for RetryLater: the delay comes from the policy.
	UsePolicy bool
}

func (e *RetryAfterError) Error() string {
	if e.UsePolicy {
		return "redelivery: retry later"
	}
	return fmt.Sprintf("redelivery: retry after %v", e.Delay)
}

// RetryLater returns the verdict "retry this message later, on the policy's
// schedule", RocketMQ's ReconsumeLater. It is retried even when the policy's
// Classifier would stop an ordinary error; MaxAttempts still applies.
func RetryLater() error { return &RetryAfterError{UsePolicy: true} }

// RetryAfter returns the verdict "retry this message after d" instead of the
// policy's delay. MaxAttempts still applies.
func RetryAfter(d time.Duration) error {
	if d < 0 {
		d = 0
	}
	return &RetryAfterError{Delay: d}
}

// DeadLetterError is the verdict "move this message to the dead-letter queue
// now, without further retries". Reason is stored in the DLQ message's
// metadata.LastError; its metadata.DeadLetterReason is ReasonVerdict.
type DeadLetterError struct {
	Reason string
}

func (e *DeadLetterError) Error() string { return "redelivery: dead-letter now: " + e.Reason }

// DeadLetter returns the verdict "dead-letter this message now".
func DeadLetter(reason string) error { return &DeadLetterError{Reason: reason} }

// PanicError is what a recovered handler panic becomes. It is retried like any
// other error (unless the policy's Classifier stops it); when the message is
// dead-lettered, Stack is stored under metadata.PanicStack.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine stack at the panic.
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("redelivery: handler panicked: %v", e.Value) }

// Unwrap returns the panic value when it is an error, so errors.Is sees through
// a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// Sentinel errors.
var (
	// ErrInvalidConfig is wrapped by every configuration error of New and Replay.
	ErrInvalidConfig = errors.New("redelivery: invalid config")
	// ErrClosed is returned (and the message nacked) when a failed message must
	// be scheduled after Close.
	ErrClosed = errors.New("redelivery: closed")
	// ErrMissingOriginalTopic is reported by Replay for a dead-lettered message
	// that does not say which topic it came from.
	ErrMissingOriginalTopic = errors.New("redelivery: message has no original topic")
)

// Dead-letter reasons, the values of metadata.DeadLetterReason.
const (
	// ReasonMaxAttempts: the policy's MaxAttempts was reached.
	ReasonMaxAttempts = "max_attempts"
	// ReasonMaxElapsed: the next retry would start after the policy's MaxElapsed.
	ReasonMaxElapsed = "max_elapsed"
	// ReasonPermanent: the error was policy.Permanent or the Classifier stopped it.
	ReasonPermanent = "permanent"
	// ReasonVerdict: the handler returned DeadLetter.
	ReasonVerdict = "dead_letter_verdict"
	// ReasonPanic: the handler panicked and the Classifier stopped the panic error.
	ReasonPanic = "panic"
	// ReasonBroadcast is the DroppedParams reason of a failed broadcast message.
	ReasonBroadcast = "broadcast"
)
