package rocketmqtest

import (
	"container/heap"
	"strconv"
	"sync"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

// storeDelayed stores m in SCHEDULE_TOPIC_XXXX (queue level-1) with its real
// destination in REAL_TOPIC/REAL_QID, as the Apache commit log does, and
// schedules its re-put after the (scaled) level duration.
func (b *Broker) storeDelayed(m *storedMsg, dest *topic, qid, level int) {
	levels := b.cfg.DelayLevels
	if level > len(levels) {
		level = len(levels)
	}
	m.props[propRealTopic] = dest.name
	m.props[propRealQID] = strconv.Itoa(qid)
	m.props[propDelay] = strconv.Itoa(level)
	m.Properties = wire.FormatProperties(m.props)
	st := b.getTopic(scheduleTopic)
	b.append(st, level-1, m)
	d := time.Duration(float64(levels[level-1]) * b.cfg.DelayScale)
	b.sched.add(b.cfg.Clock.Now().Add(d), m)
}

// deliverDelayed re-puts a due message (delay level or timer) to its real
// topic and queue, with DELAY cleared and REAL_TOPIC/REAL_QID kept (a timer
// message loses REAL_TOPIC/REAL_QID and keeps TIMER_OUT_MS, as on a 5.x
// broker), under a new commit-log offset.
func (b *Broker) deliverDelayed(m *storedMsg) {
	name := m.props[propRealTopic]
	qid, _ := strconv.Atoi(m.props[propRealQID])
	t := b.getTopic(name)
	if t == nil {
		if !isRetryTopic(name) && !isDLQTopic(name) {
			return // the topic was deleted while the message waited
		}
		t, _ = b.ensureTopic(name, 1)
	}
	if qid < 0 || qid >= len(t.queues()) {
		qid = 0
	}
	props := copyProperties(m.props, 0)
	delete(props, propDelay)
	if _, timer := props[propTimerOutMs]; timer {
		delete(props, propRealTopic)
		delete(props, propRealQID)
	}
	n := &storedMsg{
		Message: wire.Message{
			Flag:           m.Flag,
			SysFlag:        m.SysFlag,
			BornTimestamp:  m.BornTimestamp,
			BornHost:       m.BornHost,
			ReconsumeTimes: m.ReconsumeTimes,
			Body:           m.Body,
		},
		props: props,
		tag:   props[propTags],
	}
	b.append(t, qid, n)
}

type delayed struct {
	due time.Time
	seq uint64
	msg *storedMsg // a delayed message to re-put, or
	fn  func()     // a broker task (transaction checks, client expiry)
}

type delayHeap []delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// scheduler holds delayed messages in due order. Its goroutine runs while
// the broker runs; pending messages survive Stop and Restart.
type scheduler struct {
	b    *Broker
	mu   sync.Mutex
	h    delayHeap
	seq  uint64
	wake chan struct{}
}

func newScheduler(b *Broker) *scheduler {
	return &scheduler{b: b, wake: make(chan struct{}, 1)}
}

func (s *scheduler) add(due time.Time, m *storedMsg) { s.push(delayed{due: due, msg: m}) }

// after runs fn on the scheduler goroutine once d has passed on the clock.
// Tasks pending at Close are dropped; across Stop and Restart they wait.
func (s *scheduler) after(d time.Duration, fn func()) {
	s.push(delayed{due: s.b.cfg.Clock.Now().Add(d), fn: fn})
}

func (s *scheduler) push(d delayed) {
	s.mu.Lock()
	s.seq++
	d.seq = s.seq
	heap.Push(&s.h, d)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pending counts delayed messages (not tasks).
func (s *scheduler) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.h {
		if d.msg != nil {
			n++
		}
	}
	return n
}

func (s *scheduler) clear() {
	s.mu.Lock()
	s.h = nil
	s.mu.Unlock()
}

func (s *scheduler) start(stop <-chan struct{}) {
	s.b.wg.Add(1)
	go func() {
		defer s.b.wg.Done()
		s.run(stop)
	}()
}

func (s *scheduler) run(stop <-chan struct{}) {
	clk := s.b.cfg.Clock
	for {
		var timer <-chan time.Time
		s.mu.Lock()
		var due []delayed
		now := clk.Now()
		for len(s.h) > 0 && !s.h[0].due.After(now) {
			due = append(due, heap.Pop(&s.h).(delayed))
		}
		if len(s.h) > 0 {
			timer = clk.After(s.h[0].due.Sub(now))
		}
		s.mu.Unlock()
		for _, d := range due {
			if d.fn != nil {
				d.fn()
			} else {
				s.b.deliverDelayed(d.msg)
			}
		}
		if len(due) > 0 {
			continue
		}
		select {
		case <-timer:
		case <-s.wake:
		case <-stop:
			return
		}
	}
}
