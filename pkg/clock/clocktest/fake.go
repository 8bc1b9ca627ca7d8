// Package clocktest provides a fake clock.Clock for tests.
package clocktest

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/reliamq/reliamq/pkg/clock"
)

var _ clock.Clock = (*Fake)(nil)

// Fake is a clock that moves only when Advance or Set is called.
// It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	changed chan struct{} // closed and replaced whenever a timer is added
}

type timer struct {
	at time.Time
	ch chan time.Time
}

// NewFake returns a Fake clock set to start. A zero start means 2024-01-01 UTC,
// so test output is stable.
func NewFake(start time.Time) *Fake {
	if start.IsZero() {
		start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return &Fake{now: start, changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// After returns a channel that fires when the fake time reaches Now()+d.
func (f *Fake) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- f.now
		return ch
	}
	f.timers = append(f.timers, &timer{at: f.now.Add(d), ch: ch})
	close(f.changed)
	f.changed = make(chan struct{})
	return ch
}

// Advance moves the clock forward by d and fires every timer that is due,
// earliest first.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.setLocked(f.now.Add(d))
	f.mu.Unlock()
}

// Set moves the clock to t (never backwards) and fires the timers that are due.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	if t.After(f.now) {
		f.setLocked(t)
	}
	f.mu.Unlock()
}

func (f *Fake) setLocked(t time.Time) {
	f.now = t
	sort.SliceStable(f.timers, func(i, j int) bool { return f.timers[i].at.Before(f.timers[j].at) })
	kept := f.timers[:0]
	for _, tm := range f.timers {
		if !tm.at.After(t) {
			tm.ch <- tm.at
			continue
		}
		kept = append(kept, tm)
	}
	f.timers = kept
}

// Pending returns how many timers are waiting.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// NextDeadline returns the due time of the earliest pending timer.
func (f *Fake) NextDeadline() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return time.Time{}, false
	}
	next := f.timers[0].at
	for _, tm := range f.timers[1:] {
		if tm.at.Before(next) {
			next = tm.at
		}
	}
	return next, true
}

// BlockUntil waits until at least n timers are pending or ctx ends. Tests call it
// before Advance so they never race the code under test.
func (f *Fake) BlockUntil(ctx context.Context, n int) error {
	return f.waitFor(ctx, func() bool { return len(f.timers) >= n })
}

// BlockUntilDue waits until a pending timer is due at exactly at, or ctx
// ends. Use it instead of BlockUntil when the code under test leaves timers
// it no longer waits on (a select that took another case): those count as
// pending, so a timer count cannot tell that the awaited wait has started.
func (f *Fake) BlockUntilDue(ctx context.Context, at time.Time) error {
	return f.waitFor(ctx, func() bool {
		for _, tm := range f.timers {
			if tm.at.Equal(at) {
				return true
			}
		}
		return false
	})
}

// waitFor waits until cond, checked under the lock, holds after a timer was
// added, or ctx ends.
func (f *Fake) waitFor(ctx context.Context, cond func() bool) error {
	for {
		f.mu.Lock()
		if cond() {
			f.mu.Unlock()
			return nil
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// AdvanceToNext moves the clock to the earliest pending timer and fires it.
// It returns the duration advanced, or false when no timer is pending.
func (f *Fake) AdvanceToNext() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return 0, false
	}
	next := f.timers[0].at
	for _, tm := range f.timers[1:] {
		if tm.at.Before(next) {
			next = tm.at
		}
	}
	d := next.Sub(f.now)
	if d > 0 {
		f.setLocked(next)
	} else {
		f.setLocked(f.now)
	}
	return d, true
}
