package inbox

import "time"

// DuplicateParams describes a delivery acknowledged without running the
// handler, because its UUID was already processed.
type DuplicateParams struct {
	MessageUUID            string
	ConsumerGroup, Handler string
}

// DuplicateHook observes skipped duplicates. It runs on the handler's
// goroutine.
type DuplicateHook interface {
	OnDuplicate(DuplicateParams)
}

// PurgedParams describes one purge: a run of batches until the expired
// records are gone, or an error.
type PurgedParams struct {
	// Deleted is how many records the purge deleted.
	Deleted int
	// Batches is how many delete statements ran.
	Batches int
	// Duration is the purge's time, pauses included.
	Duration time.Duration
	// Err is the error that stopped the purge early; nil when it finished.
	Err error
}

// PurgedHook observes purges (background or Purge calls). It runs on the
// purging goroutine.
type PurgedHook interface {
	OnPurged(PurgedParams)
}
