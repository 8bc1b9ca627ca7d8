// Package clock is the time source of every reliamq component that waits or
// schedules: retry loops, the fallback relay and consumer redelivery.
//
// Production code uses Real. Tests use clocktest.Fake, which moves only when the
// test advances it, so hours of a retry schedule run in microseconds.
package clock

import "time"

// Clock tells the time and waits. Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has elapsed.
	// A zero or negative d fires at once.
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

// OrReal returns c, or Real when c is nil. Config setDefaults methods use it.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}
