package journal

import "time"

// CommitHook observes the journal's commits. Set it in Config.Hooks; a
// value implementing no hook of this package is rejected by New. Hooks run
// synchronously on the committer goroutine, after the callers of the commit
// got their answer: they must be fast, non-blocking and safe for concurrent
// use. The relay's sends are observed with the fallback hooks in
// Config.Relay.Hooks.
type CommitHook interface {
	// OnJournalCommit runs once per commit (one transaction, or one per call
	// when a call of the group broke a store rule and the calls were
	// written one by one).
	OnJournalCommit(CommitParams)
}

// CommitParams describes one commit.
type CommitParams struct {
	// Calls is the number of Publish calls the commit answered, Messages
	// their messages, Failed the messages not written.
	Calls, Messages, Failed int
	// Duration is how long the writes took.
	Duration time.Duration
	// Err is the store's error when the whole commit failed, else nil.
	Err error
}
