package rocketmq

import "sync"

// slots bounds the messages a subscription has handed out and not yet seen
// acked or nacked (SubscriberConfig.ConsumeGoroutines). A consume call takes
// as many slots as it has messages to hand out, or as many as are free, and
// gives them all back once each of those messages is acked or nacked. A call
// never waits for slots while it holds some, so two calls cannot wait on each
// other.
type slots struct {
	mu   sync.Mutex
	free int
	// ready holds a signal once slots became free that a waiting call may
	// not have seen yet. A call that takes some and leaves others free passes
	// the signal on, so every waiter gets its turn; a stale signal only makes
	// a waiter look again.
	ready chan struct{}
}

func newSlots(n int) *slots {
	return &slots{free: n, ready: make(chan struct{}, 1)}
}

// take takes between 1 and want slots, waiting until one is free. It returns
// 0 if stop closes first.
func (s *slots) take(want int, stop <-chan struct{}) int {
	for {
		s.mu.Lock()
		if s.free > 0 {
			n := min(s.free, want)
			s.free -= n
			left := s.free
			s.mu.Unlock()
			if left > 0 {
				s.signal()
			}
			return n
		}
		s.mu.Unlock()
		select {
		case <-s.ready:
		case <-stop:
			return 0
		}
	}
}

// give returns n slots.
func (s *slots) give(n int) {
	s.mu.Lock()
	s.free += n
	s.mu.Unlock()
	s.signal()
}

func (s *slots) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}
