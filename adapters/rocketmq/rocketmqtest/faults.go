package rocketmqtest

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// faults holds the injected faults per request code. The hot path reads one
// atomic flag while no fault is set.
type faults struct {
	any   atomic.Bool
	mu    sync.Mutex
	rules map[RequestCode]*faultRule
}

type faultRule struct {
	failResp ResponseCode
	failLeft int // >0: that many more; <0: until cleared; 0: none
	randResp ResponseCode
	randProb float64
	latency  time.Duration
	silence  bool
}

// faultAction is what to do with one request; fail < 0 means answer normally.
type faultAction struct {
	fail    ResponseCode
	latency time.Duration
	silence bool
}

func (f *faults) init() { f.rules = map[RequestCode]*faultRule{} }

func (f *faults) check(code RequestCode) faultAction {
	act := faultAction{fail: -1}
	if !f.any.Load() {
		return act
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rules[code]
	if r == nil {
		return act
	}
	if r.silence {
		act.silence = true
		return act
	}
	act.latency = r.latency
	switch {
	case r.failLeft != 0:
		act.fail = r.failResp
		if r.failLeft > 0 {
			r.failLeft--
		}
	case r.randProb > 0 && rand.Float64() < r.randProb:
		act.fail = r.randResp
	}
	return act
}

func (f *faults) update(code RequestCode, fn func(r *faultRule)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rules[code]
	if r == nil {
		r = &faultRule{}
		f.rules[code] = r
	}
	fn(r)
	f.any.Store(true)
}

// Fail makes the next n requests with the given code fail with resp; n < 0
// fails them until ClearFaults, n == 0 stops failing them. A later call
// replaces the count. The failure is an answer with that response code: the
// request has no effect on the broker's state.
func (b *Broker) Fail(code RequestCode, resp ResponseCode, n int) {
	b.faults.update(code, func(r *faultRule) { r.failResp, r.failLeft = resp, n })
}

// FailRandomly makes each request with the given code fail with resp with
// the given probability (0 turns it off).
func (b *Broker) FailRandomly(code RequestCode, resp ResponseCode, probability float64) {
	b.faults.update(code, func(r *faultRule) { r.randResp, r.randProb = resp, probability })
}

// SetLatency delays every answer to requests with the given code by d
// (0 turns it off). Delayed requests do not hold up other requests on the
// same connection.
func (b *Broker) SetLatency(code RequestCode, d time.Duration) {
	b.faults.update(code, func(r *faultRule) { r.latency = d })
}

// Silence makes the broker read and ignore requests with the given code
// (true) or answer them again (false); the client then times out.
func (b *Broker) Silence(code RequestCode, on bool) {
	b.faults.update(code, func(r *faultRule) { r.silence = on })
}

// ClearFaults removes every injected fault.
func (b *Broker) ClearFaults() {
	b.faults.mu.Lock()
	b.faults.rules = map[RequestCode]*faultRule{}
	b.faults.any.Store(false)
	b.faults.mu.Unlock()
}

// StallConsumersOnRestart (true) makes Stop and the time after Restart
// behave as the Apache broker's do, which stalls push consumers for 15 to
// 33 s (measured on 4.9.4 with a 12 s restart: consumption resumed 31.5 s
// after the stop when a pull was held at the stop, 15.1 s when none was;
// messages sent right after the restart waited up to 20.5 s):
//   - Stop closes connections without answering held pulls: the client
//     waits its 30 s pull timeout for each, then 3 s more, before it pulls
//     that queue again. (By default Stop answers them SERVICE_NOT_AVAILABLE
//     and consumers resume 3 s after Restart.)
//   - A pull of a consumer group with no live member (none has sent a
//     heartbeat on an open connection, as after a restart until the client's
//     next heartbeat, which it sends every 30 s) is answered
//     SUBSCRIPTION_NOT_EXIST, "the consumer's group info not exist"; the
//     client retries it after 3 s. (By default such pulls are served.)
//
// false restores the defaults. Safe to call while clients run.
func (b *Broker) StallConsumersOnRestart(on bool) { b.stallOnRestart.Store(on) }
