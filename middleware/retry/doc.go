// Package retry is a message.Publisher decorator that retries a failed Publish
// under a policy.Policy: a plain loop of attempt, classify, wait, with the
// policy's schedule as its delays and Config.Clock as its timer.
//
// It is the innermost reliamq layer on the send path:
//
//	async.Publisher( fallback.Publisher( retry.Publisher( broker publisher ) ) )
//
// and the fallback relay resends stored messages through a retry.Publisher too.
//
// What one Publish does:
//
//   - The first attempt calls the inner publisher directly; on success nothing
//     else happens (no allocation, no timer, no loop set-up).
//   - After a failure the error is classified with Policy.Retryable: a
//     policy.Permanent error, a context error or a Classifier "stop" is returned
//     as is, after that one attempt.
//   - Otherwise the publisher waits Policy.JitteredDelay(n, u) (u drawn from
//     Config.Rand, math/rand/v2 by default) on the configured Clock (a zero
//     delay does not wait) and tries again, up to Policy.MaxAttempts attempts
//     in total, and only while the next attempt starts within Policy.MaxElapsed
//     of the first failure (the success path reads no clock, so the budget
//     starts when the first attempt fails).
//   - When attempts or the time budget run out, Publish returns an
//     *ExhaustedError (errors.Is(err, ErrExhausted)) holding the attempt count;
//     it unwraps to the last error, so errors.Is/As still see the cause.
//   - The messages' contexts are the send context (Watermill semantics): when
//     one is cancelled the loop stops at once, even in the middle of a wait, and
//     Publish returns an error matching both the context error and the last
//     publish error. A cancelled context is never retried: no attempt starts
//     once it has ended, even after a zero delay.
//
// # Hooks
//
// Config.Hooks takes observers implementing AttemptHook (every call to the
// inner publisher, with the policy's verdict on its error in
// AttemptParams.Retryable), RetryHook (a failed attempt that will be retried,
// with the delay about to be waited) and GiveUpHook (a Publish about to return an error,
// with its GiveUpReason). Several may coexist; they run synchronously on the
// Publish caller's goroutine, must be fast and safe for concurrent use, and
// only observe. They are the only way to observe a Publisher: there is no
// callback field. middleware/metrics builds its publish counters on them. Without an
// AttemptHook the success path is unchanged (one length check); with one it
// costs one interface call per attempt and no allocation.
//
// # Delivery guarantees
//
// At-least-once for every Publish that returns nil; a Publish that returns an
// error may still have delivered some or all of its messages. Duplicates happen
// when an attempt failed on the client side although the broker stored the
// message (a timeout, a lost reply) and the message is sent again; the message
// keeps its UUID across attempts so consumers can deduplicate. Batches: when a
// Publish of several messages fails and the error implements PartialError, only
// the messages the backend did not accept are sent again, and the
// ExhaustedError returned when retries run out lists in Accepted what every
// attempt delivered, so a fallback stores only the rest; when it does not,
// every message of the call is sent again, so the ones the backend had already
// stored are duplicated. Order within one call is kept; order between
// concurrent calls is not. The publisher holds no state between calls and
// never loses a message by itself: every message is either published, or
// reported in the returned error. It is safe for concurrent use as long as the
// inner publisher is. Close closes the inner publisher; it does not interrupt a
// Publish that is waiting between attempts (cancel the message context for that).
package retry
