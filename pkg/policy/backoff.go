package policy

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/reliamq/reliamq/internal/rocketmqlevels"
)

// Backoff is a delay schedule. Delay returns the wait before retry n, where
// n >= 1 is the n-th retry (attempt n+1). Implementations must be pure and safe
// for concurrent use: the same n always gives the same delay.
//
// Backoffs may also implement Validate() error; Policy.Validate calls it.
type Backoff interface {
	Delay(retry int) time.Duration
}

// BackoffFunc adapts a function to Backoff.
type BackoffFunc func(retry int) time.Duration

// Delay calls f(retry).
func (f BackoffFunc) Delay(retry int) time.Duration { return f(retry) }

// maxDuration is the largest time.Duration; overflowing schedules stop there.
const maxDuration = time.Duration(math.MaxInt64)

type fixedBackoff struct{ d time.Duration }

// Fixed waits d before every retry.
func Fixed(d time.Duration) Backoff { return fixedBackoff{d: d} }

func (b fixedBackoff) Delay(int) time.Duration { return b.d }

func (b fixedBackoff) Validate() error {
	if b.d < 0 {
		return fmt.Errorf("fixed backoff: delay %v: must be >= 0", b.d)
	}
	return nil
}

func (b fixedBackoff) String() string { return fmt.Sprintf("fixed(%v)", b.d) }

type exponentialBackoff struct {
	initial    time.Duration
	multiplier float64
	max        time.Duration
}

// Exponential waits initial before the first retry and multiplies the wait by
// multiplier for each further retry: Delay(n) = initial * multiplier^(n-1),
// computed in floating point so that 1.5 grows by exactly 1.5x. A max greater
// than zero caps the delay; zero means no cap (beyond the largest Duration, which
// also bounds huge n instead of overflowing).
//
// Validate rejects a negative initial, a multiplier below 1 (or NaN/Inf) and a
// max below initial.
func Exponential(initial time.Duration, multiplier float64, max time.Duration) Backoff {
	return exponentialBackoff{initial: initial, multiplier: multiplier, max: max}
}

func (b exponentialBackoff) Delay(retry int) time.Duration {
	if retry < 1 {
		retry = 1
	}
	limit := maxDuration
	if b.max > 0 {
		limit = b.max
	}
	if b.initial <= 0 {
		return 0
	}
	d := float64(b.initial) * math.Pow(b.multiplier, float64(retry-1))
	// Comparing in float64 before converting avoids the undefined int64
	// conversion of values beyond MaxInt64 (and of +Inf and NaN).
	if math.IsNaN(d) || d >= float64(limit) {
		return limit
	}
	return time.Duration(d)
}

func (b exponentialBackoff) Validate() error {
	var errs []error
	if b.initial < 0 {
		errs = append(errs, fmt.Errorf("exponential backoff: initial %v: must be >= 0", b.initial))
	}
	if math.IsNaN(b.multiplier) || math.IsInf(b.multiplier, 0) || b.multiplier < 1 {
		errs = append(errs, fmt.Errorf("exponential backoff: multiplier %v: must be a finite number >= 1", b.multiplier))
	}
	if b.max < 0 {
		errs = append(errs, fmt.Errorf("exponential backoff: max %v: must be >= 0 (0 means no cap)", b.max))
	} else if b.max > 0 && b.max < b.initial {
		errs = append(errs, fmt.Errorf("exponential backoff: max %v: must be >= initial %v", b.max, b.initial))
	}
	return errors.Join(errs...)
}

func (b exponentialBackoff) String() string {
	return fmt.Sprintf("exponential(%v, x%v, max %v)", b.initial, b.multiplier, b.max)
}

type tableBackoff struct{ steps []time.Duration }

// Table waits ds[n-1] before retry n; past the end of the table the last step
// repeats. The slice is copied. Validate rejects an empty table and negative
// steps.
func Table(ds ...time.Duration) Backoff {
	return tableBackoff{steps: append([]time.Duration(nil), ds...)}
}

func (b tableBackoff) Delay(retry int) time.Duration {
	if len(b.steps) == 0 {
		return 0
	}
	if retry < 1 {
		retry = 1
	}
	if retry > len(b.steps) {
		return b.steps[len(b.steps)-1]
	}
	return b.steps[retry-1]
}

func (b tableBackoff) Validate() error {
	if len(b.steps) == 0 {
		return errors.New("table backoff: must have at least one step")
	}
	var errs []error
	for i, d := range b.steps {
		if d < 0 {
			errs = append(errs, fmt.Errorf("table backoff: step %d (%v): must be >= 0", i+1, d))
		}
	}
	return errors.Join(errs...)
}

func (b tableBackoff) String() string { return fmt.Sprintf("table%v", b.steps) }

// rocketMQSteps is the broker's consumer retry schedule: delay levels 3..18
// of its messageDelayLevel "1s 5s 10s 30s 1m ... 2h" (the first two levels,
// which consumer retries skip, left out). The levels are written once, in
// internal/rocketmqlevels, which the RocketMQ adapter and its embedded
// broker read too.
var rocketMQSteps = rocketmqlevels.ConsumerRetries()

// RocketMQRetries is the number of retries in the broker's default consumer
// schedule (maxReconsumeTimes).
const RocketMQRetries = 16

// RocketMQ returns the broker's default consumer retry policy: 17 attempts
// (the first delivery and 16 retries) waiting 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m
// 10m 20m 30m 1h 2h, 4h46m in total. Raising MaxAttempts above 17 keeps the
// broker's rule: every retry past the 16th waits 2h. No jitter, no budget.
func RocketMQ() Policy {
	return Policy{
		MaxAttempts: RocketMQRetries + 1,
		Backoff:     Table(rocketMQSteps...),
	}
}
