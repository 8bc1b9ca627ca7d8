package rocketmq

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The subscription tests run the RocketMQ client, which the race detector
// cannot run; these run the slots on their own, with it.

func TestSlots_never_hand_out_more_than_the_bound_and_never_stall(t *testing.T) {
	const bound, workers, rounds = 5, 8, 2000
	s := newSlots(bound)
	stop := make(chan struct{})
	var inUse, most atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				want := 1 + (w+i)%8
				n := s.take(want, stop)
				if n < 1 || n > want {
					t.Errorf("take(%d) = %d", want, n)
					return
				}
				now := inUse.Add(int64(n))
				for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
				}
				inUse.Add(-int64(n))
				s.give(n)
			}
		}(w)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		close(stop)
		<-done
		t.Fatal("workers stalled waiting for slots")
	}
	if m := most.Load(); m > bound {
		t.Fatalf("%d slots in use at once, the bound is %d", m, bound)
	}
	if got := s.take(bound, stop); got != bound {
		t.Fatalf("after every slot was given back, take(%d) = %d", bound, got)
	}
}

func TestSlots_take_gives_up_when_stop_closes(t *testing.T) {
	s := newSlots(1)
	stop := make(chan struct{})
	if n := s.take(3, stop); n != 1 {
		t.Fatalf("take(3) with one free slot = %d, want 1", n)
	}
	got := make(chan int, 1)
	go func() { got <- s.take(1, stop) }()
	select {
	case n := <-got:
		t.Fatalf("take returned %d with no free slot", n)
	case <-time.After(50 * time.Millisecond):
	}
	close(stop)
	if n := <-got; n != 0 {
		t.Fatalf("take after stop = %d, want 0", n)
	}
}
