package retry

import (
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
)

// Hooks are observers set in Config.Hooks. A hook value implements one or
// more of AttemptHook, RetryHook and GiveUpHook; a value implementing none of
// them is rejected by Validate. Several values may observe the same
// Publisher: each hook runs in the order of Config.Hooks. Hooks run
// synchronously on the goroutine that called Publish, so they must be fast,
// non-blocking and safe for concurrent use. They must not modify the
// messages they are shown.
//
// Decisions (which errors are retried, how long to wait) belong to the
// Policy, not to hooks: a hook only observes.

// AttemptHook observes every call to the inner publisher.
type AttemptHook interface {
	// OnPublishAttempt runs after each call to the inner publisher returns,
	// the first attempt included, successful or not: on the success path it
	// is the only hook that runs.
	OnPublishAttempt(AttemptParams)
}

// RetryHook observes failed attempts that will be retried.
type RetryHook interface {
	// OnPublishRetry runs after a failed attempt that will be retried, before
	// the wait. It does not run for the last failure (see GiveUpHook).
	OnPublishRetry(Params)
}

// GiveUpHook observes Publish calls that return an error.
type GiveUpHook interface {
	// OnGiveUp runs once per failed Publish call, just before it returns,
	// after the OnPublishAttempt of its last attempt.
	OnGiveUp(GiveUpParams)
}

// AttemptParams describes one call to the inner publisher.
type AttemptParams struct {
	// Attempt is the 1-based number of the attempt (1 = the first call).
	Attempt int
	// Topic is the Publish topic.
	Topic string
	// Messages are the messages this attempt sent: after a PartialError, only
	// those the backend had not accepted yet.
	Messages []*message.Message
	// Err is the error of the attempt, nil on success. A PartialError means
	// the backend accepted some of Messages.
	Err error
	// Retryable is Policy.Retryable(Err): false for a nil Err, a permanent
	// error, a context error or an error the Classifier stops. It says how
	// the policy classifies the error, not whether attempts or time remain.
	Retryable bool
	// Duration is how long the call to the inner publisher took, on
	// Config.Clock (read only when an AttemptHook is set).
	Duration time.Duration
}

// GiveUpReason says why a Publish call returned an error.
type GiveUpReason int

const (
	// GiveUpPermanent: the policy does not retry the error
	// (Policy.Retryable is false: policy.Permanent, a Classifier Stop).
	GiveUpPermanent GiveUpReason = iota + 1
	// GiveUpExhausted: Policy.MaxAttempts attempts failed.
	GiveUpExhausted
	// GiveUpBudget: the next retry would have started after Policy.MaxElapsed.
	GiveUpBudget
	// GiveUpCanceled: a message context ended (canceled or deadline). Not a
	// failure of the backend.
	GiveUpCanceled
)

// String returns "permanent", "exhausted", "budget" or "canceled".
func (r GiveUpReason) String() string {
	switch r {
	case GiveUpPermanent:
		return "permanent"
	case GiveUpExhausted:
		return "exhausted"
	case GiveUpBudget:
		return "budget"
	case GiveUpCanceled:
		return "canceled"
	}
	return fmt.Sprintf("GiveUpReason(%d)", int(r))
}

// GiveUpParams describes a Publish call that returns an error.
type GiveUpParams struct {
	// Reason says why no further attempt is made.
	Reason GiveUpReason
	// Attempts is the number of attempts made, including the first.
	Attempts int
	// Elapsed is the time since the first attempt failed, on Config.Clock.
	Elapsed time.Duration
	// Topic is the Publish topic.
	Topic string
	// Messages are the messages not sent: after a PartialError, only those
	// the backend had not accepted.
	Messages []*message.Message
	// Err is the error Publish returns (an *ExhaustedError for
	// GiveUpExhausted and GiveUpBudget).
	Err error
}

// hookSet holds Config.Hooks split by interface, so Publish only ranges over
// slices (empty ones cost a length check).
type hookSet struct {
	attempt []AttemptHook
	retry   []RetryHook
	giveUp  []GiveUpHook
}

func newHooks(values []any) hookSet {
	return hookSet{
		attempt: hooks.Of[AttemptHook](values),
		retry:   hooks.Of[RetryHook](values),
		giveUp:  hooks.Of[GiveUpHook](values),
	}
}
