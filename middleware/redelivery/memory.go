package redelivery

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// memEntry is one waiting message, kept compact because InMemory mode may
// hold millions: its UUID, metadata and payload are packed into one byte
// slice (packMessage), and its channels and context are only created when it
// is due. The garbage collector, which marks every waiting message on every
// cycle, marks one object without pointers per entry instead of a string per
// metadata key and value.
type memEntry struct {
	due    int64 // Unix nanoseconds
	failed int64 // Unix nanoseconds of the failure that scheduled it
	retry  int32
	msg    []byte // packMessage
}

// memoryScheduler is a min-heap of due times served by one goroutine that
// waits on the Clock for the earliest entry.
type memoryScheduler struct {
	r *Redelivery

	mu     sync.Mutex
	heap   []memEntry
	closed bool
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

func newMemoryScheduler(r *Redelivery) *memoryScheduler {
	s := &memoryScheduler{
		r:    r,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go s.run()
	return s
}

func (s *memoryScheduler) schedule(_ context.Context, msg *message.Message, retry int, failed, due time.Time, _ string) error {
	e := memEntry{due: due.UnixNano(), failed: failed.UnixNano(), retry: int32(retry), msg: packMessage(msg)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.push(e)
	first := s.heap[0].due == e.due
	s.mu.Unlock()
	s.r.stats.waiting.Add(1)
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// start is a no-op: only messages that failed in this process wait here, so
// the retry handler is already running.
func (s *memoryScheduler) start() {}

func (s *memoryScheduler) close() error {
	s.mu.Lock()
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
		s.r.stats.lostOnClose.Add(uint64(lost))
		s.r.stats.waiting.Add(-int64(lost))
		s.r.logger.Info("In-memory redelivery closed with messages still waiting; they are lost",
			watermill.LogFields{"lost": lost})
	}
	return nil
}

func (s *memoryScheduler) run() {
	defer close(s.done)
	clk := s.r.cfg.Clock
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

func (s *memoryScheduler) publish(e memEntry, now time.Time) {
	r := s.r
	msg := unpackMessage(e.msg)
	err := r.cfg.Publisher.Publish(r.cfg.RetryTopic, msg)
	r.fireRedelivered(msg.UUID, int(e.retry), time.Unix(0, e.failed), time.Unix(0, e.due), now, err)
	if err == nil {
		r.stats.waiting.Add(-1)
		return
	}
	r.logger.Error("Publishing a due message to the retry topic failed; will try again", err,
		watermill.LogFields{"message_uuid": msg.UUID, "retry_topic": r.cfg.RetryTopic})
	e.due = now.Add(r.cfg.PublishRetryInterval).UnixNano()
	s.mu.Lock()
	if !s.closed {
		s.push(e)
	} else {
		r.stats.lostOnClose.Add(1)
		r.stats.waiting.Add(-1)
	}
	s.mu.Unlock()
}

func (r *Redelivery) fireRedelivered(uuid string, retry int, failed, due, now time.Time, err error) {
	if err == nil {
		r.stats.redelivered.Add(1)
	} else {
		r.stats.publishFailures.Add(1)
	}
	if len(r.hooks.redelivered) == 0 {
		return
	}
	p := RedeliveredParams{
		MessageUUID: uuid, ConsumerGroup: r.cfg.ConsumerGroup, Handler: r.cfg.Handler,
		RetryTopic: r.cfg.RetryTopic, Retry: retry, FailedAt: failed, Due: due, PublishedAt: now, Err: err,
	}
	for _, h := range r.hooks.redelivered {
		h.OnRedelivered(p)
	}
}

func (s *memoryScheduler) push(e memEntry) {
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

func (s *memoryScheduler) pop() memEntry {
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

// packMessage encodes msg's UUID, its number of metadata pairs, each key and
// value, and its payload, every count and length a uvarint.
func packMessage(msg *message.Message) []byte {
	n := uvarintLen(len(msg.UUID)) + len(msg.UUID) + uvarintLen(len(msg.Metadata)) + len(msg.Payload)
	for k, v := range msg.Metadata {
		n += uvarintLen(len(k)) + len(k) + uvarintLen(len(v)) + len(v)
	}
	b := make([]byte, 0, n)
	b = appendString(b, msg.UUID)
	b = binary.AppendUvarint(b, uint64(len(msg.Metadata)))
	for k, v := range msg.Metadata {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	return append(b, msg.Payload...)
}

// unpackMessage decodes what packMessage encoded. The UUID and the metadata
// are substrings of one string copied from b, one allocation for all of them;
// the payload shares b's storage: the entry is dropped once published, and a
// message published again after a failed publish gets the same bytes.
func unpackMessage(b []byte) *message.Message {
	// The first pass finds where the payload starts.
	off := skipString(b, 0)
	pairs, n := binary.Uvarint(b[off:])
	off += n
	for i := uint64(0); i < 2*pairs; i++ {
		off = skipString(b, off)
	}
	head := string(b[:off])
	uuid, off := readString(b, head, 0)
	_, n = binary.Uvarint(b[off:])
	off += n
	md := make(message.Metadata, int(pairs))
	for i := uint64(0); i < pairs; i++ {
		var k, v string
		k, off = readString(b, head, off)
		v, off = readString(b, head, off)
		md[k] = v
	}
	msg := message.NewMessage(uuid, b[len(head):len(b):len(b)])
	msg.Metadata = md
	return msg
}

// skipString returns the offset after the length-prefixed string at off.
func skipString(b []byte, off int) int {
	l, n := binary.Uvarint(b[off:])
	return off + n + int(l)
}

// readString returns the length-prefixed string at off in b as a substring of
// head, which holds b's bytes up to the payload, and the offset after it.
func readString(b []byte, head string, off int) (string, int) {
	l, n := binary.Uvarint(b[off:])
	start := off + n
	return head[start : start+int(l)], start + int(l)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func uvarintLen(x int) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}
