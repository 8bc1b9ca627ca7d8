package policy

import "errors"

// ErrClosed is matched (errors.Is) by the closed-publisher errors of every
// reliamq publisher (rocketmq.ErrClosed, fallback.ErrClosed, async.ErrClosed,
// sqlstore.ErrClosed). Such an error is the publisher's state, not the
// message's fault: a component that sends on behalf of others (the fallback
// relay) stops instead of blaming the message.
var ErrClosed = errors.New("publisher closed")

// closedError is a package's own closed sentinel that also matches ErrClosed.
type closedError struct{ text string }

func (e *closedError) Error() string        { return e.text }
func (e *closedError) Is(target error) bool { return target == ErrClosed }

// NewClosedError returns a new sentinel with the given text that matches
// ErrClosed as well as itself, for a publisher package's ErrClosed.
func NewClosedError(text string) error { return &closedError{text: text} }
