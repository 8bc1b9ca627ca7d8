package async

import "sync/atomic"

// Stats is a snapshot of a Publisher's counters. Counts are of Publish calls,
// not messages.
type Stats struct {
	// Queued is the number of calls waiting in the queue now.
	Queued int
	// InFlight is the number of calls being sent now (by workers or callers).
	InFlight int64
	// Workers is the number of worker goroutines now.
	Workers int64
	// Done and Failed count sends that succeeded or failed, by workers and by
	// callers (CallerRuns) alike; leftovers are not included.
	Done, Failed int64
	// Rejected counts calls refused with an error: ErrQueueFull, ErrClosed,
	// a Block whose context ended, or bad input (pkg/msgcheck).
	Rejected int64
	// CallerRan counts calls sent on the caller's goroutine (CallerRuns).
	CallerRan int64
	// Leftover counts calls that Close handed to Leftovers or reported as not
	// sent.
	Leftover int64
	// Capacity is Config.QueueCapacity (after defaults): Queued/Capacity is
	// the queue's saturation, and FullPolicy applies once it reaches 1.
	Capacity int
	// MaxWorkers is Config.MaxWorkers (after defaults), the bound of Workers.
	MaxWorkers int
}

// counter is an atomic counter on a cache line of its own: producers and
// workers on different cores update different counters at high rates, and
// a counter sharing a line with another (or with the read-only fields every
// call reads) would make each update evict the others' copies.
type counter struct {
	atomic.Int64
	_ [56]byte
}

// counters are the Publisher's hot counters. Sends by workers and by callers
// are counted apart, since they run on different goroutines, mostly on
// different cores. The worker counters only grow, so that each send costs one
// atomic add when it starts and one when it ends; the number in progress is
// the difference.
type counters struct {
	_ [64]byte // off the line of the fields before

	// gate counts the Publish calls that may still send on the queue or
	// start a worker, plus closedBit once Close has started (see Publisher).
	gate counter

	workers counter // worker goroutines running

	// Calls taken by workers (or reserved for a starting one), and how their
	// sends ended: done, failed, or cut off by Close's timeout.
	taken, done, failed, cut counter
	// callers counts the caller-run sends in progress (CallerRuns), plus
	// closedBit once Close has started: the gate of caller-run sends.
	callers counter
	// How caller-run sends ended.
	callerOK, callerFailed counter

	rejected          counter
	leftover, notSent counter
}

// workerSends is the number of calls workers are sending now. The ends are
// read before the starts, so the result is never negative.
func (c *counters) workerSends() int64 {
	ended := c.done.Load() + c.failed.Load() + c.cut.Load()
	return c.taken.Load() - ended
}

// callerSends is the number of calls callers are sending now.
func (c *counters) callerSends() int64 {
	return c.callers.Load() &^ closedBit
}

// Stats returns a snapshot of the counters.
func (p *Publisher) Stats() Stats {
	inFlight := p.n.workerSends() + p.n.callerSends()
	callerOK, callerFailed := p.n.callerOK.Load(), p.n.callerFailed.Load()
	return Stats{
		Queued:    len(p.queue),
		InFlight:  inFlight,
		Workers:   p.n.workers.Load(),
		Done:      p.n.done.Load() + callerOK,
		Failed:    p.n.failed.Load() + callerFailed,
		Rejected:  p.n.rejected.Load(),
		CallerRan: callerOK + callerFailed,
		Leftover:  p.n.leftover.Load(),
		// Capacity and MaxWorkers are fixed at construction; they travel
		// with the counters so an observer can compute saturation from one
		// snapshot, without keeping the Config.
		Capacity:   cap(p.queue),
		MaxWorkers: p.cfg.MaxWorkers,
	}
}
