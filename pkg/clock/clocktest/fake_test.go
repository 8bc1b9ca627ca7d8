package clocktest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/reliamq/reliamq/pkg/clock/clocktest"
)

func TestFake_fires_timers_in_order_only_when_advanced(t *testing.T) {
	f := clocktest.NewFake(time.Time{})
	start := f.Now()
	late := f.After(2 * time.Hour)
	early := f.After(10 * time.Second)
	if f.Pending() != 2 {
		t.Fatalf("pending = %d, want 2", f.Pending())
	}
	select {
	case <-early:
		t.Fatal("timer fired before the clock moved")
	default:
	}
	f.Advance(10 * time.Second)
	if got := <-early; !got.Equal(start.Add(10 * time.Second)) {
		t.Fatalf("early fired at %v", got)
	}
	select {
	case <-late:
		t.Fatal("late timer fired too soon")
	default:
	}
	d, ok := f.AdvanceToNext()
	if !ok || d != 2*time.Hour-10*time.Second {
		t.Fatalf("AdvanceToNext = %v, %v", d, ok)
	}
	<-late
	if f.Pending() != 0 {
		t.Fatalf("pending = %d after all fired", f.Pending())
	}
}

func TestFake_BlockUntil_returns_when_a_timer_is_added(t *testing.T) {
	f := clocktest.NewFake(time.Time{})
	go func() { <-f.After(time.Minute) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Minute)
}

func TestFake_zero_delay_fires_at_once(t *testing.T) {
	f := clocktest.NewFake(time.Time{})
	select {
	case <-f.After(0):
	default:
		t.Fatal("After(0) did not fire")
	}
}

func TestFake_BlockUntilDue_waits_for_a_timer_due_at_that_time_not_for_any_timer(t *testing.T) {
	f := clocktest.NewFake(time.Time{})
	start := f.Now()
	_ = f.After(time.Minute) // left pending, as a select that took another case leaves it
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := f.BlockUntilDue(ctx, start.Add(time.Second))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("BlockUntilDue with only another timer pending = %v, want the context's deadline", err)
	}
	added := make(chan (<-chan time.Time), 1)
	go func() {
		time.Sleep(10 * time.Millisecond)
		added <- f.After(time.Second)
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.BlockUntilDue(ctx, start.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Second)
	select {
	case <-<-added:
	default:
		t.Fatal("the awaited timer did not fire when due")
	}
}
