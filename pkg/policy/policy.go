package policy

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Policy is one retry policy, the same value for the send-side retry, the relay
// and consumer redelivery. The zero value fails Validate (unlimited attempts with
// no delay would be a busy loop): set at least MaxAttempts.
//
// Fields:
//   - MaxAttempts counts every attempt INCLUDING the first (Spring Retry's
//     max-attempts): 1 means no retry, RocketMQ() uses 17 (16 retries). Zero
//     means unlimited, bounded only by MaxElapsed or the caller's context;
//     negative values are rejected by Validate.
//   - MaxElapsed is an optional total budget measured from the first attempt
//     (each stage documents its exact starting point); zero means none. Loops
//     must not start a retry whose delay would end past the budget (see
//     WithinBudget).
//   - Backoff is the delay schedule; nil means no delay between attempts.
//   - MaxDelay caps the delay of any schedule, jittered or not; zero means no cap.
//   - Jitter randomises delays; the zero value is no jitter.
//   - Classifier refines Retryable for errors that are neither permanent nor a
//     context error; nil retries them all.
type Policy struct {
	// MaxAttempts is the total number of attempts including the first; 1 = no
	// retry; 0 = unlimited (bounded by MaxElapsed or context).
	MaxAttempts int
	// MaxElapsed is the optional total time budget; 0 = none.
	MaxElapsed time.Duration
	// Backoff is the delay before each retry; nil = no delay.
	Backoff Backoff
	// MaxDelay caps every delay (after jitter too); 0 = no cap.
	MaxDelay time.Duration
	// Jitter randomises delays in JitteredDelay; zero value = none.
	Jitter Jitter
	// Classifier is consulted by Retryable for errors that are not nil, not
	// Permanent and not a context error. It must be pure and concurrency-safe.
	Classifier func(err error) Class
}

// Class is a Classifier's verdict on an error.
type Class int

const (
	// Default leaves the decision to the policy: the error is retried.
	Default Class = iota
	// Retry forces a retry of an error the caller's rules consider transient.
	Retry
	// Stop makes the error final: it is not retried.
	Stop
)

// String returns "default", "retry" or "stop".
func (c Class) String() string {
	switch c {
	case Default:
		return "default"
	case Retry:
		return "retry"
	case Stop:
		return "stop"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// JitterMode selects how JitteredDelay randomises a delay.
type JitterMode int

const (
	// JitterNone keeps the scheduled delay (the default).
	JitterNone JitterMode = iota
	// JitterFull draws the delay uniformly from [0, d) ("full jitter").
	JitterFull
	// JitterUniform draws the delay uniformly from [d*(1-Fraction), d*(1+Fraction)).
	JitterUniform
)

// String returns "none", "full" or "uniform".
func (m JitterMode) String() string {
	switch m {
	case JitterNone:
		return "none"
	case JitterFull:
		return "full"
	case JitterUniform:
		return "uniform"
	}
	return fmt.Sprintf("JitterMode(%d)", int(m))
}

// Jitter randomises retry delays so that many clients failing together do not
// retry together. The zero value is no jitter.
type Jitter struct {
	// Mode is JitterNone (default), JitterFull or JitterUniform.
	Mode JitterMode
	// Fraction is the half-width of JitterUniform, in (0, 1]: 0.2 means ±20%.
	// It is ignored by the other modes.
	Fraction float64
}

// NoJitter returns the zero Jitter.
func NoJitter() Jitter { return Jitter{} }

// FullJitter draws each delay uniformly from [0, d).
func FullJitter() Jitter { return Jitter{Mode: JitterFull} }

// UniformJitter draws each delay uniformly from [d*(1-fraction), d*(1+fraction)).
func UniformJitter(fraction float64) Jitter {
	return Jitter{Mode: JitterUniform, Fraction: fraction}
}

// Validate reports an unknown mode or a uniform fraction outside (0, 1].
func (j Jitter) Validate() error {
	switch j.Mode {
	case JitterNone, JitterFull:
		return nil
	case JitterUniform:
		if math.IsNaN(j.Fraction) || j.Fraction <= 0 || j.Fraction > 1 {
			return fmt.Errorf("jitter: fraction %v: must be in (0, 1]", j.Fraction)
		}
		return nil
	}
	return fmt.Errorf("jitter: unknown mode %d", int(j.Mode))
}

// WithMaxRetries returns a copy of p allowing n retries after the first attempt
// (MaxAttempts = n+1). A negative n means unlimited (MaxAttempts = 0).
func (p Policy) WithMaxRetries(n int) Policy {
	if n < 0 {
		p.MaxAttempts = 0
		return p
	}
	p.MaxAttempts = n + 1
	return p
}

// Retries returns the number of retries the policy allows after the first
// attempt (MaxAttempts-1), or -1 when attempts are unlimited.
func (p Policy) Retries() int {
	if p.MaxAttempts <= 0 {
		return -1
	}
	return p.MaxAttempts - 1
}

// Delay returns the wait before retry n (n >= 1; retry n is attempt n+1): the
// Backoff's delay capped by MaxDelay, without jitter. Delay is pure. Values of n
// below 1 are treated as 1; a nil Backoff gives 0; negative delays become 0.
func (p Policy) Delay(retry int) time.Duration {
	if retry < 1 {
		retry = 1
	}
	if p.Backoff == nil {
		return 0
	}
	d := p.Backoff.Delay(retry)
	if d < 0 {
		d = 0
	}
	if p.MaxDelay > 0 && d > p.MaxDelay {
		d = p.MaxDelay
	}
	return d
}

// JitteredDelay returns Delay(retry) with the policy's Jitter applied, using u
// in [0, 1) as the random draw (values outside are clamped), then capped by
// MaxDelay. The caller supplies u (the retry middleware uses math/rand/v2) so the
// function stays pure and testable:
//
//   - JitterNone: Delay(retry).
//   - JitterFull: Delay(retry) * u.
//   - JitterUniform: Delay(retry) * (1 + Fraction*(2u-1)).
func (p Policy) JitteredDelay(retry int, u float64) time.Duration {
	d := p.Delay(retry)
	if math.IsNaN(u) || u < 0 {
		u = 0
	}
	if u >= 1 {
		u = math.Nextafter(1, 0)
	}
	var f float64
	switch p.Jitter.Mode {
	case JitterFull:
		f = float64(d) * u
	case JitterUniform:
		frac := p.Jitter.Fraction
		if math.IsNaN(frac) || frac < 0 {
			frac = 0
		}
		if frac > 1 {
			frac = 1
		}
		f = float64(d) * (1 + frac*(2*u-1))
	default:
		return d
	}
	limit := maxDuration
	if p.MaxDelay > 0 {
		limit = p.MaxDelay
	}
	if f >= float64(limit) {
		return limit
	}
	if f <= 0 {
		return 0
	}
	return time.Duration(f)
}

// Schedule returns the delays before retries 1..k (Delay(1), ..., Delay(k)),
// without jitter. k <= 0 gives nil.
func (p Policy) Schedule(k int) []time.Duration {
	if k <= 0 {
		return nil
	}
	out := make([]time.Duration, k)
	for i := range out {
		out[i] = p.Delay(i + 1)
	}
	return out
}

// Exhausted reports whether no attempt remains after attempts attempts were made
// (attempts >= MaxAttempts). With MaxAttempts <= 0 (unlimited) it is always false.
func (p Policy) Exhausted(attempts int) bool {
	return p.MaxAttempts > 0 && attempts >= p.MaxAttempts
}

// WithinBudget reports whether a retry that starts after waiting delay, when
// elapsed has already passed since the first attempt began, still starts within
// MaxElapsed. Always true when MaxElapsed is zero.
func (p Policy) WithinBudget(elapsed, delay time.Duration) bool {
	if p.MaxElapsed <= 0 {
		return true
	}
	return elapsed+delay <= p.MaxElapsed
}

// Retryable reports whether err is worth another attempt. It is false for nil,
// for errors wrapped with Permanent anywhere in their chain, for
// context.Canceled and context.DeadlineExceeded (these two can not be overridden),
// and when the Classifier returns Stop. Otherwise it is true (Classifier Default
// or Retry, or no Classifier).
func (p Policy) Retryable(err error) bool {
	if !IsRetryable(err) {
		return false
	}
	if p.Classifier != nil && p.Classifier(err) == Stop {
		return false
	}
	return true
}

// Validate reports every problem of the policy at once (errors.Join), each
// wrapping ErrInvalidConfig and naming the field ("policy: invalid config:
// MaxAttempts: ..."): negative MaxAttempts, MaxElapsed or MaxDelay, an invalid
// Backoff (if it implements Validate() error) or Jitter, and an unbounded loop
// (unlimited attempts, no budget and a zero first delay).
func (p Policy) Validate() error {
	var errs []error
	if p.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxAttempts: %d: must be >= 1, or 0 for unlimited", ErrInvalidConfig, p.MaxAttempts))
	}
	if p.MaxElapsed < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxElapsed: %v: must be >= 0 (0 means no budget)", ErrInvalidConfig, p.MaxElapsed))
	}
	if p.MaxDelay < 0 {
		errs = append(errs, fmt.Errorf("%w: MaxDelay: %v: must be >= 0 (0 means no cap)", ErrInvalidConfig, p.MaxDelay))
	}
	if v, ok := p.Backoff.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			errs = append(errs, fieldErrors("Backoff", err)...)
		}
	}
	if err := p.Jitter.Validate(); err != nil {
		errs = append(errs, fieldErrors("Jitter", err)...)
	}
	if len(errs) == 0 && p.MaxAttempts == 0 && p.MaxElapsed == 0 && p.Delay(1) == 0 {
		errs = append(errs, fmt.Errorf("%w: MaxAttempts: 0 (unlimited) with no MaxElapsed and no delay would retry in a busy loop: set MaxAttempts, MaxElapsed or a Backoff", ErrInvalidConfig))
	}
	return errors.Join(errs...)
}

// fieldErrors reports err, or each error it joins, as a problem of field.
func fieldErrors(field string, err error) []error {
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]error, len(list))
	for i, e := range list {
		out[i] = fmt.Errorf("%w: %s: %v", ErrInvalidConfig, field, e)
	}
	return out
}
