package redelivery

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// memEntry is one waiting message: the UUID, metadata and payload of the
// copy the middleware made for the retry topic. The Watermill message
// (channels, context) is created when it is due.
type memEntry struct {
	due     int64 // Unix nanoseconds
	failed  int64 // Unix nanoseconds of the failure that scheduled it
	retry   int32
	uuid    string
	md      message.Metadata
	payload message.Payload
}

// InMemoryConfig configures NewInMemory.
type InMemoryConfig struct {
	// PublishRetryInterval is how long a due message waits before a failed
	// publish to the retry topic is tried again (without limit). Default
	// DefaultPublishRetryInterval.
	PublishRetryInterval time.Duration
}

// InMemory is the Scheduler that keeps waiting messages in a timer heap in
// this process, served by one goroutine that waits on the Clock for the
// earliest one and publishes it to the retry topic (ByRetryTopic). A crash
// or Close loses the messages still waiting (they were already
// acknowledged; Stats.LostOnClose counts those lost at Close): use it for
// tests and where losing a pending retry is acceptable. About 0.8 KB per
// waiting message plus its payload
// (BenchmarkInMemory_memory_per_waiting_message).
type InMemory struct {
	cfg InMemoryConfig
	t   Target

	mu     sync.Mutex
	heap   []memEntry
	opened bool
	closed bool
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

var _ Scheduler = (*InMemory)(nil)

// NewInMemory returns an in-memory Scheduler for Config.Scheduler. Its
// config is checked by New.
func NewInMemory(cfg InMemoryConfig) *InMemory {
	return &InMemory{cfg: cfg}
}

// Route is ByRetryTopic.
func (s *InMemory) Route() Route { return ByRetryTopic }

// Open checks the config and starts the timer goroutine.
func (s *InMemory) Open(t Target) error {
	if s.cfg.PublishRetryInterval == 0 {
		s.cfg.PublishRetryInterval = DefaultPublishRetryInterval
	}
	if s.cfg.PublishRetryInterval < 0 {
		return fmt.Errorf("%w: Scheduler: PublishRetryInterval: %v: must be positive", ErrInvalidConfig, s.cfg.PublishRetryInterval)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened {
		return fmt.Errorf("%w: Scheduler: already serves another Redelivery", ErrInvalidConfig)
	}
	s.opened = true
	s.t = t
	s.wake = make(chan struct{}, 1)
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go s.run()
	return nil
}

// Schedule puts the message in the heap; it is published to the retry
// topic at s.Due(). The wait is s.Delay.
func (s *InMemory) Schedule(_ context.Context, sc Scheduled) (time.Duration, error) {
	e := memEntry{due: sc.Due().UnixNano(), failed: sc.FailedAt.UnixNano(), retry: int32(sc.Retry), uuid: sc.Message.UUID, md: sc.Message.Metadata, payload: sc.Message.Payload}
	s.mu.Lock()
	if s.closed || !s.opened {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	s.push(e)
	first := s.heap[0].due == e.due
	s.mu.Unlock()
	s.t.Observer.OnWaiting(1)
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return sc.Delay, nil
}

// Close stops the timer goroutine; the messages still waiting are lost and
// reported to Target.Observer.OnLost.
func (s *InMemory) Close() error {
	s.mu.Lock()
	if !s.opened {
		s.closed = true
		s.mu.Unlock()
		return nil
	}
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	<-s.done
	s.mu.Lock()
	lost := len(s.heap)
	s.heap = nil
	s.mu.Unlock()
	if lost > 0 {
		s.t.Observer.OnLost(lost)
		s.t.Observer.OnWaiting(-lost)
		s.t.Logger.Info("In-memory redelivery closed with messages still waiting; they are lost",
			watermill.LogFields{"lost": lost})
	}
	return nil
}

func (s *InMemory) run() {
	defer close(s.done)
	clk := s.t.Clock
	for {
		s.mu.Lock()
		if len(s.heap) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-s.stop:
				return
			}
		}
		now := clk.Now()
		wait := time.Duration(s.heap[0].due - now.UnixNano())
		if wait > 0 {
			s.mu.Unlock()
			select {
			case <-clk.After(wait):
			case <-s.wake:
			case <-s.stop:
				return
			}
			continue
		}
		e := s.pop()
		s.mu.Unlock()
		s.publish(e, now)
	}
}

func (s *InMemory) publish(e memEntry, now time.Time) {
	t := s.t
	msg := message.NewMessage(e.uuid, e.payload)
	msg.Metadata = e.md
	err := t.Publisher.Publish(t.RetryTopic, msg)
	t.Observer.OnRedelivered(RedeliveredParams{
		MessageUUID: msg.UUID, ConsumerGroup: t.ConsumerGroup, Handler: t.Handler, RetryTopic: t.RetryTopic,
		Retry: int(e.retry), FailedAt: time.Unix(0, e.failed), Due: time.Unix(0, e.due), PublishedAt: now, Err: err,
	})
	if err == nil {
		t.Observer.OnWaiting(-1)
		return
	}
	t.Logger.Error("Publishing a due message to the retry topic failed; will try again", err,
		watermill.LogFields{"message_uuid": msg.UUID, "retry_topic": t.RetryTopic})
	e.due = now.Add(s.cfg.PublishRetryInterval).UnixNano()
	// The next attempt publishes a fresh message: the publisher that
	// failed may have kept or changed this one's metadata.
	e.md = maps.Clone(e.md)
	s.mu.Lock()
	if !s.closed {
		s.push(e)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	t.Observer.OnLost(1)
	t.Observer.OnWaiting(-1)
}

func (s *InMemory) push(e memEntry) {
	s.heap = append(s.heap, e)
	h := s.heap
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].due <= h[i].due {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (s *InMemory) pop() memEntry {
	h := s.heap
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h[n] = memEntry{}
	h = h[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if rr := l + 1; rr < n && h[rr].due < h[l].due {
			m = rr
		}
		if h[i].due <= h[m].due {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	s.heap = h
	return top
}
