package policy

import (
	"context"
	"errors"
)

// permanentError marks an error as not worth retrying. It is unexported so the
// only way to make one is Permanent and the only way to detect one is
// IsPermanent (errors.As), whatever wrapping happens in between.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that no reliamq stage retries it (invalid topic,
// message too large, no permission...). errors.Is and errors.As still see err,
// and the message is unchanged. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	if IsPermanent(err) {
		return err
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// IsRetryable applies the rules every Policy shares, without a Classifier: it
// is false for nil, for Permanent errors and for context.Canceled and
// context.DeadlineExceeded, and true otherwise. Policy.Retryable adds the
// policy's Classifier.
func IsRetryable(err error) bool {
	return err != nil && !IsPermanent(err) && !isContextErr(err)
}
