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
// different cores.
type counters struct {
	_ [64]byte // off the line of the fields before

	// gate counts the Publish calls that may still send on the queue or
	// start a worker, plus closedBit once Close has started (see Publisher).
	gate counter

	workers  counter // worker goroutines running
	inFlight counter // calls being sent by workers (or reserved for a starting one)
	callers  counter // caller-run sends in progress

	done, failed           counter // by workers
	callerOK, callerFailed counter // by callers
	rejected               counter
	leftover, notSent      counter
}

// Stats returns a snapshot of the counters.
func (p *Publisher) Stats() Stats {
	callerOK, callerFailed := p.n.callerOK.Load(), p.n.callerFailed.Load()
	return Stats{
		Queued:    len(p.queue),
		InFlight:  p.n.inFlight.Load() + p.n.callers.Load(),
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
