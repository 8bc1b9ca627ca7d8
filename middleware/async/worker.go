package async

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/pkg/clock"
)

// task is one Publish call waiting for a worker.
type task struct {
	topic string
	msgs  []*message.Message
}

// reserve counts in a worker about to start, unless limit are running.
// Callers are inside the gate, so no worker starts once Close has closed
// the queue.
func (p *Publisher) reserve(limit int) bool {
	for {
		w := p.n.workers.Load()
		if w >= int64(limit) {
			return false
		}
		if p.n.workers.CompareAndSwap(w, w+1) {
			return true
		}
	}
}

// startWith starts a worker reserved with reserve, with t as its first call.
// t counts as taken from now: a call that finds the queue full before the
// new goroutine runs must see this worker as busy.
func (p *Publisher) startWith(t task) {
	p.n.taken.Add(1)
	p.workersWG.Add(1)
	go func() {
		defer p.workersWG.Done()
		p.run(t)
		p.work()
	}()
}

// startIdle starts a worker reserved with reserve, with no call of its own.
func (p *Publisher) startIdle() {
	p.workersWG.Add(1)
	go func() {
		defer p.workersWG.Done()
		p.work()
	}()
}

// work is a worker's loop: it sends queued calls until the queue is closed
// and empty, Close's timeout runs out, or, while more than CoreWorkers are
// running, it has waited KeepAlive for work.
func (p *Publisher) work() {
	var keepAlive *time.Timer // with the real clock, one timer reused
	for !p.aborted.Load() {
		if p.n.workers.Load() <= int64(p.cfg.CoreWorkers) {
			// A core worker waits as long as it takes: a plain receive, the
			// cheapest.
			t, ok := <-p.queue
			if !ok {
				p.exit()
				return
			}
			p.n.taken.Add(1)
			p.run(t)
			continue
		}
		select {
		case t, ok := <-p.queue:
			if !ok {
				p.exit()
				return
			}
			p.n.taken.Add(1)
			p.run(t)
			continue
		default:
		}
		// An extra worker, and the queue is empty.
		var expired <-chan time.Time
		if _, real := p.cfg.Clock.(clock.Real); real {
			if keepAlive == nil {
				keepAlive = time.NewTimer(p.cfg.KeepAlive)
			} else {
				keepAlive.Reset(p.cfg.KeepAlive)
			}
			expired = keepAlive.C
		} else {
			expired = p.cfg.Clock.After(p.cfg.KeepAlive)
		}
		select {
		case t, ok := <-p.queue:
			if keepAlive != nil {
				keepAlive.Stop()
			}
			if !ok {
				p.exit()
				return
			}
			p.n.taken.Add(1)
			p.run(t)
		case <-expired:
			// Retire unless that would leave fewer than CoreWorkers. Never
			// the last worker, so Close needs no poke.
			if w := p.n.workers.Load(); w > int64(p.cfg.CoreWorkers) && p.n.workers.CompareAndSwap(w, w-1) {
				return
			}
		}
	}
	p.exit()
}

// exit counts a worker out when it ends for Close.
func (p *Publisher) exit() {
	if p.n.workers.Add(-1) == 0 && p.sealed.Load() {
		p.poke()
	}
}

// run sends one call taken by a worker (counted in taken) and reports it.
func (p *Publisher) run(t task) {
	err := p.inner.Publish(t.topic, t.msgs...)
	switch {
	case err == nil:
		p.n.done.Add(1)
	case p.aborted.Load():
		// Cut off by Close's timeout. Hand it over rather than lose it; the
		// broker may have stored it anyway, so this can duplicate.
		p.n.cut.Add(1)
		p.toLeftovers(t, err)
		return
	default:
		p.n.failed.Add(1)
	}
	p.report(Result{Topic: t.topic, Messages: t.msgs, Err: err})
}
