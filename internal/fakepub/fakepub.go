// Package fakepub is the one message.Publisher test double reliamq's tests
// share. A Publisher records every message it accepts, answers each call
// from a script of errors (then from Err, then from Func), and can wait for
// a number of accepted messages; Sent lists what every call sent, failed
// ones included. Nop is the publisher that does nothing, for
// benchmarks that measure only the code around it.
package fakepub

import (
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Nop accepts every message and keeps nothing. It is a variable of
// interface type so calls through it pay the interface call every
// decorator pays.
var Nop message.Publisher = nop{}

type nop struct{}

func (nop) Publish(string, ...*message.Message) error { return nil }
func (nop) Close() error                              { return nil }

// Record is one accepted message.
type Record struct {
	Topic string
	Msg   *message.Message
}

// Publisher is a recording, scriptable message.Publisher, safe for
// concurrent use. Set its fields before the first Publish.
type Publisher struct {
	// Script answers the first len(Script) calls in order.
	Script []error
	// Err answers every call after the script, when Func is nil.
	Err error
	// Func, if set, answers every call after the script. It runs without
	// the Publisher's lock held, so it may block, advance a clock or
	// publish elsewhere.
	Func func(topic string, msgs []*message.Message) error

	mu       sync.Mutex
	cond     *sync.Cond
	calls    int
	sent     [][]string
	accepted []Record
	closed   bool
}

// Publish answers from the script, Err or Func, and records msgs when the
// answer is nil.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	n := p.calls
	p.calls++
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		if m != nil {
			ids[i] = m.UUID
		}
	}
	p.sent = append(p.sent, ids)
	fn, scripted := p.Func, n < len(p.Script)
	var err error
	if scripted {
		err = p.Script[n]
	} else if fn == nil {
		err = p.Err
	}
	p.mu.Unlock()
	if !scripted && fn != nil {
		err = fn(topic, msgs)
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	for _, m := range msgs {
		p.accepted = append(p.accepted, Record{Topic: topic, Msg: m})
	}
	p.signal()
	p.mu.Unlock()
	return nil
}

// Close marks the publisher closed; later calls still answer as before.
func (p *Publisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

// Closed reports whether Close was called.
func (p *Publisher) Closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Calls is the number of Publish calls so far, failed ones included.
func (p *Publisher) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// Sent returns the UUIDs of the messages of every Publish call, one slice
// per call in call order, failed calls included: what each attempt of a
// retrying caller sent.
func (p *Publisher) Sent() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]string(nil), p.sent...)
}

// Accepted returns a copy of the accepted messages, in order.
func (p *Publisher) Accepted() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Record(nil), p.accepted...)
}

// UUIDs returns the UUIDs of the accepted messages, in order.
func (p *Publisher) UUIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.accepted))
	for i, r := range p.accepted {
		out[i] = r.Msg.UUID
	}
	return out
}

// Topics returns the topic of each accepted message, in order.
func (p *Publisher) Topics() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.accepted))
	for i, r := range p.accepted {
		out[i] = r.Topic
	}
	return out
}

// Count counts the accepted messages per UUID: 1 is delivered once, more
// is a duplicate.
func (p *Publisher) Count() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.accepted))
	for _, r := range p.accepted {
		out[r.Msg.UUID]++
	}
	return out
}

// WaitAccepted waits until at least n messages were accepted or timeout
// passes, and reports whether n were reached.
func (p *Publisher) WaitAccepted(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		p.mu.Lock()
		p.signal()
		p.mu.Unlock()
	})
	defer timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.accepted) < n {
		if !time.Now().Before(deadline) {
			return false
		}
		p.waitLocked()
	}
	return true
}

func (p *Publisher) signal() {
	if p.cond != nil {
		p.cond.Broadcast()
	}
}

func (p *Publisher) waitLocked() {
	if p.cond == nil {
		p.cond = sync.NewCond(&p.mu)
	}
	p.cond.Wait()
}
