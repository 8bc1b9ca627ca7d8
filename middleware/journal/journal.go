package journal

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

var (
	// ErrClosed is returned by Publish once Close has started. It also
	// matches policy.ErrClosed, and is marked permanent.
	ErrClosed = policy.NewClosedError("journal: publisher closed")
	// ErrNotJournaled matches the error of a Publish whose commit failed
	// (the store is down, full, or StoreTimeout ran out). The messages were
	// not taken: the caller still owns them. When the database lost the
	// commit's answer, the rows may exist all the same (a duplicate if the
	// caller publishes again).
	ErrNotJournaled = errors.New("journal: messages not journaled")
)

var _ message.Publisher = (*Publisher)(nil)

// request is one Publish call waiting for its commit.
type request struct {
	rows []queue.Row
	done chan error // capacity 1: the commit's result, or errLead
}

// errLead, sent to a waiting call, makes it the leader: it commits the next
// group.
var errLead = errors.New("journal: lead the next commit")

// Publisher writes every Publish call to a durable journal (a queue.Queue)
// and returns once the rows are committed; a fallback.Relay over that queue
// sends them through the inner publisher and deletes them. Concurrent
// Publish calls share commits (group commit). See the package documentation
// for the delivery guarantees. It is safe for concurrent use.
type Publisher struct {
	inner        message.Publisher
	store        queue.Queue
	queue        string
	owner        string
	checker      msgcheck.Checker
	maxBatch     int
	storeTimeout time.Duration
	noDeadline   bool // commits on SQLite with StoreTimeout left zero: see Config.StoreTimeout
	closeTimeout time.Duration
	commitHooks  []CommitHook
	clock        clock.Clock
	relays       []*fallback.Relay
	logger       watermill.LoggerAdapter

	// Group commit: the calls waiting for a commit queue in pending; one of
	// them at a time, the leader, writes a group and hands the lead to the
	// first call still waiting. A lone caller commits on its own goroutine.
	mu        sync.Mutex
	closed    bool
	pending   []*request
	leading   bool           // a leader is committing: pending calls are its
	lastGroup int            // the calls the last commit answered
	inflight  sync.WaitGroup // Publish calls past the closed check

	stopRelay context.CancelFunc
	relayDone chan struct{} // closed when recovery and every Run have returned
	relayErr  error         // the Runs' errors, read after relayDone

	closeOnce sync.Once
	closeErr  error

	messages, commits, failed, rejected atomic.Uint64
}

// New returns a Publisher that journals into cfg.Store and sends through
// inner. It starts the committer and, in the background, makes the rows a
// previous run left due now (those it held leased, see Config.Owner, and
// those waiting for a retry) and starts the relays: rows left by a process
// that died are sent at once. A nil logger becomes
// watermill.NopLogger. Errors match ErrInvalidConfig.
func New(inner message.Publisher, cfg Config, logger watermill.LoggerAdapter) (*Publisher, error) {
	if err := validateNils(inner, cfg); err != nil {
		return nil, err
	}
	noDeadline := cfg.StoreTimeout == 0 && writesBounded(cfg.Store)
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	rc := cfg.Relay
	rc.Store, rc.Queue, rc.Publisher, rc.Owner = cfg.Store, cfg.Queue, inner, cfg.Owner
	relays := make([]*fallback.Relay, cfg.Relays)
	for i := range relays {
		r, err := fallback.NewRelay(rc, logger)
		if err != nil {
			return nil, fmt.Errorf("%w: Relay: %w", ErrInvalidConfig, err)
		}
		relays[i] = r
	}
	checker := cfg.Checker
	if checker == nil {
		checker, _ = inner.(msgcheck.Checker)
	}
	p := &Publisher{
		inner:        inner,
		store:        cfg.Store,
		queue:        cfg.Queue,
		owner:        cfg.Owner,
		checker:      checker,
		maxBatch:     cfg.MaxBatch,
		storeTimeout: cfg.StoreTimeout,
		noDeadline:   noDeadline,
		closeTimeout: cfg.CloseTimeout,
		commitHooks:  hooks.Of[CommitHook](cfg.Hooks),
		clock:        clock.OrReal(cfg.Relay.Clock),
		relays:       relays,
		logger:       logger.With(watermill.LogFields{"component": "journal.Publisher", "queue": cfg.Queue}),
		relayDone:    make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stopRelay = cancel
	go p.runRelays(ctx)
	return p, nil
}

// PublisherDecorator returns a message.PublisherDecorator that wraps a
// publisher with New(pub, cfg, logger).
func PublisherDecorator(cfg Config, logger watermill.LoggerAdapter) message.PublisherDecorator {
	return func(pub message.Publisher) (message.Publisher, error) {
		return New(pub, cfg, logger)
	}
}

// Publish writes msgs to the journal and returns nil once they are
// committed (all of them, in one transaction). From then on the relays own
// them: they send them through the inner publisher and delete them.
//
// Bad input is refused at once with a permanent error and nothing is
// written: the rules every reliamq publisher shares (pkg/msgcheck: no
// messages, a nil message, an empty or invalid UUID, invalid metadata;
// matching queue.ErrInvalidMessage or queue.ErrInvalidMetadata too), the
// store's topic rules (queue.ErrInvalidTopic), and the Checker's refusals.
// A failed commit returns an error matching ErrNotJournaled and the store's
// error; after Close, ErrClosed.
//
// Publish waits for the commit even when the context of the messages ends:
// the rows may be committed by then, and an error would invite a duplicate.
// StoreTimeout bounds the wait (on SQLite with StoreTimeout left zero,
// SQLite's busy timeout: see Config.StoreTimeout).
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.check(topic, msgs); err != nil {
		p.rejected.Add(uint64(len(msgs)))
		return err
	}
	rows := make([]queue.Row, len(msgs))
	for i, m := range msgs {
		rows[i] = queue.FromMessage(p.queue, topic, m)
	}
	req := &request{rows: rows, done: make(chan error, 1)}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return policy.Permanent(ErrClosed)
	}
	p.inflight.Add(1)
	defer p.inflight.Done()
	p.pending = append(p.pending, req)
	lead := !p.leading
	p.leading = true
	// The callers the last commit answered are runnable now, perhaps behind
	// this goroutine on its processor. When there were others than this one,
	// let them queue their next calls before the group is cut, or each
	// commit carries one call while the others wait for the next. A lone
	// caller does not wait for itself.
	yield := p.lastGroup > 1
	p.mu.Unlock()
	if !lead {
		if err := <-req.done; err != errLead {
			return err
		}
		yield = true // handed the lead: the last commit answered others
	}
	if yield {
		runtime.Gosched()
	}
	p.lead()
	return <-req.done
}

func (p *Publisher) check(topic string, msgs []*message.Message) error {
	if len(msgs) == 0 {
		return policy.Permanent(fmt.Errorf("%w: no messages", queue.ErrInvalidMessage))
	}
	if err := msgcheck.Messages(msgs); err != nil {
		sentinel := queue.ErrInvalidMessage
		if errors.Is(err, msgcheck.ErrInvalidMetadata) {
			sentinel = queue.ErrInvalidMetadata
		}
		return policy.Permanent(fmt.Errorf("%w: %w", sentinel, err))
	}
	if err := queue.ValidateTopic(topic); err != nil {
		return policy.Permanent(err)
	}
	if p.checker != nil {
		if err := p.checker.Check(topic, msgs...); err != nil {
			return policy.Permanent(err)
		}
	}
	return nil
}

// lead commits one group: the waiting calls, oldest first, up to maxBatch
// messages (the leader's own call, the oldest, always). Then it hands the
// lead to the oldest call still waiting, or ends it when none is.
func (p *Publisher) lead() {
	p.mu.Lock()
	n, msgs := 0, 0
	for n < len(p.pending) && (n == 0 || msgs+len(p.pending[n].rows) <= p.maxBatch) {
		msgs += len(p.pending[n].rows)
		n++
	}
	batch := make([]*request, n)
	copy(batch, p.pending)
	p.pending = append(p.pending[:0], p.pending[n:]...)
	p.mu.Unlock()

	rows := batch[0].rows
	if n > 1 {
		rows = make([]queue.Row, 0, msgs)
		for _, r := range batch {
			rows = append(rows, r.rows...)
		}
	}
	p.commit(batch, rows)

	p.mu.Lock()
	p.lastGroup = n
	if len(p.pending) == 0 {
		p.leading = false
	} else {
		p.pending[0].done <- errLead
	}
	p.mu.Unlock()
}

func (p *Publisher) commit(batch []*request, rows []queue.Row) {
	start := time.Now()
	ctx := context.Background()
	if !p.noDeadline {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.storeTimeout)
		defer cancel()
	}
	err := p.store.Insert(ctx, rows...)
	// Counters and hooks see a commit before its callers hear of it, so a
	// caller that reads Stats after Publish returned finds its call counted.
	if err != nil && len(batch) > 1 && queue.IsInvalidInput(err) {
		// One call broke a rule of the store the checks above do not know:
		// it must not fail the calls it shares the transaction with.
		ok := 0
		errs := make([]error, len(batch))
		for i, r := range batch {
			errs[i] = p.store.Insert(ctx, r.rows...)
			if errs[i] == nil {
				ok += len(r.rows)
			}
		}
		p.record(len(batch), ok, len(rows)-ok, start, nil)
		for i, r := range batch {
			p.answer(r, errs[i])
		}
		if ok > 0 {
			p.notify()
		}
		return
	}
	if err != nil {
		p.record(len(batch), 0, len(rows), start, err)
	} else {
		p.record(len(batch), len(rows), 0, start, nil)
	}
	for _, r := range batch {
		p.answer(r, err)
	}
	if err == nil {
		p.notify()
	}
}

// writesBounded reports whether q bounds its own writes (queue.BoundedWriter:
// sqlstore.Store on SQLite, whose busy timeout bounds a commit).
func writesBounded(q queue.Queue) bool {
	b, ok := q.(queue.BoundedWriter)
	return ok && b.WritesBounded()
}

// notify wakes the relays: the rows just committed are due.
func (p *Publisher) notify() {
	for _, r := range p.relays {
		r.Notify()
	}
}

func (p *Publisher) answer(r *request, err error) {
	switch {
	case err == nil:
	case queue.IsInvalidInput(err):
		err = policy.Permanent(err)
	default:
		err = fmt.Errorf("%w: %w", ErrNotJournaled, err)
	}
	r.done <- err
}

func (p *Publisher) record(calls, ok, failed int, start time.Time, err error) {
	p.commits.Add(1)
	p.messages.Add(uint64(ok))
	p.failed.Add(uint64(failed))
	if err != nil {
		p.logger.Error("Journal commit failed; the callers get the error", err,
			watermill.LogFields{"calls": calls, "messages": failed})
	}
	if len(p.commitHooks) == 0 {
		return
	}
	cp := CommitParams{Calls: calls, Messages: ok + failed, Failed: failed, Duration: time.Since(start), Err: err}
	for _, h := range p.commitHooks {
		h.OnJournalCommit(cp)
	}
}

// runRelays makes the rows the previous run left due, then runs the relays
// until ctx ends or the inner publisher is closed.
func (p *Publisher) runRelays(ctx context.Context) {
	defer close(p.relayDone)
	if n, err := p.makeLeftRowsDue(ctx); err != nil && ctx.Err() == nil {
		p.logger.Error("Making the rows a previous run left due failed; they are sent when due or after their lease", err, nil)
	} else if n > 0 {
		p.logger.Info("Rows a previous run left are due now", watermill.LogFields{"rows": n})
	}
	errs := make([]error, len(p.relays))
	var wg sync.WaitGroup
	for i, r := range p.relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.Run(ctx)
		}()
	}
	wg.Wait()
	p.relayErr = errors.Join(errs...)
}

// makeLeftRowsDue makes due now, without counting an attempt, every row of
// the journal's queue that a previous run left: rows still leased by Owner
// (at start no relay of this Owner runs, so the run that claimed them died
// with them in hand) and rows waiting for a retry after a failed send (a
// restart is a fresh chance, as a relay's first probe after an outage is).
// Rows leased by another owner are left alone. It needs a store that can
// list rows (queue.Inspector, as sqlstore.Store); with another store the
// rows wait out their lease or backoff.
func (p *Publisher) makeLeftRowsDue(ctx context.Context) (int, error) {
	insp, ok := p.store.(queue.Inspector)
	if !ok {
		return 0, nil
	}
	const page = 1000
	now := p.clock.Now()
	var ids []int64
	for after := int64(0); ; {
		rows, err := insp.List(ctx, queue.Filter{Queue: p.queue, AfterID: after, Limit: page})
		if err != nil {
			return 0, err
		}
		for _, r := range rows {
			leased := r.LeasedUntil.After(now)
			if (leased && r.LeasedBy == p.owner) || (!leased && r.NextAttemptAt.After(now)) {
				ids = append(ids, r.ID)
			}
		}
		if len(rows) < page {
			break
		}
		after = rows[len(rows)-1].ID
	}
	for start := 0; start < len(ids); start += page {
		batch := ids[start:min(start+page, len(ids))]
		if err := p.store.Requeue(ctx, now, batch...); err != nil && !errors.Is(err, queue.ErrNotFound) {
			return start, err
		}
	}
	return len(ids), nil
}

// Close stops intake (Publish returns ErrClosed), waits for the commits in
// progress, then waits up to CloseTimeout for the relay to send what the
// journal holds, stops the relay and closes the inner publisher. Rows still
// in the journal then (the broker is down, or slow) stay in the store and
// are sent after the next start: Close does not lose them, and returns nil
// for them. It returns the inner publisher's Close error, and the relay's
// error if its publisher was closed under it. Later calls return the first
// call's result.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.inflight.Wait() // the commits in progress and those waiting
		left := p.drain()
		p.stopRelay()
		<-p.relayDone
		if left > 0 {
			p.logger.Info("Closed with rows in the journal; they are sent after the next start",
				watermill.LogFields{"rows": left})
		}
		var errs []error
		if p.relayErr != nil {
			errs = append(errs, p.relayErr)
		}
		if err := p.inner.Close(); err != nil {
			errs = append(errs, err)
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

// drain waits until the journal's queue is empty, CloseTimeout ran out, or
// the relay stopped; it returns the rows left (-1 when unknown).
func (p *Publisher) drain() int64 {
	deadline := time.Now().Add(p.closeTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), p.storeTimeout)
		st, err := p.store.Stats(ctx, p.queue)
		cancel()
		if err == nil && st.Backlog == 0 {
			return 0
		}
		wait := 10 * time.Millisecond
		if time.Until(deadline) < wait {
			if err != nil {
				return -1
			}
			return st.Backlog
		}
		select {
		case <-p.relayDone:
			if err != nil {
				return -1
			}
			return st.Backlog
		case <-time.After(wait):
		}
	}
}

// Stats are the journal's counters since New, and its relay's.
type Stats struct {
	// Journaled counts messages committed; Failed those whose commit failed
	// (ErrNotJournaled, or a store rule); Rejected those refused before
	// any commit (bad input, the Checker).
	Journaled, Failed, Rejected uint64
	// Commits counts transactions: Journaled/Commits is the group size.
	Commits uint64
	// Relay is the relays' counters added up, Down when one of them
	// considers the broker down, and the journal's backlog.
	Relay fallback.RelayStats
}

// Stats returns the counters and queries the store for the backlog; on a
// store error the counters are still returned, with the error.
func (p *Publisher) Stats(ctx context.Context) (Stats, error) {
	var rs fallback.RelayStats
	var err error
	for i, r := range p.relays {
		s, e := r.Stats(ctx)
		if i == 0 {
			rs, err = s, e // the store's backlog, once
		} else {
			rs.Claimed += s.Claimed
			rs.Sent += s.Sent
			rs.Failed += s.Failed
			rs.Poisoned += s.Poisoned
			rs.Requeued += s.Requeued
			rs.StoreErrors += s.StoreErrors
			rs.Down = rs.Down || s.Down
		}
	}
	return Stats{Journaled: p.messages.Load(), Failed: p.failed.Load(), Rejected: p.rejected.Load(),
		Commits: p.commits.Load(), Relay: rs}, err
}
