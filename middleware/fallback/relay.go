package fallback

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

// Poison reasons, written to metadata.DeadLetterReason and to the poisoned
// row's last_error.
const (
	// ReasonMaxAttempts: the relay policy's attempts or time budget ran out.
	ReasonMaxAttempts = "max_attempts"
	// ReasonPermanent: the publisher returned a permanent error.
	ReasonPermanent = "permanent"
)

// Relay resends stored messages: it claims due rows, publishes each through
// its Publisher, deletes the rows the publisher accepted, reschedules the
// failed ones under its Policy and moves the hopeless ones to the poison
// store or topic. Several Relays, in one process or many, may drain the same
// store and queue.
//
// When FailureThreshold sends fail in a row the relay considers the broker
// down: it stops sending the rest of the batch (those rows are released
// without counting an attempt) and probes with one row at a time, waiting
// OutageBackoff between probes, until a send succeeds.
//
// Delivery guarantees: at-least-once. A row is deleted only after the
// publisher accepted its message, so a crash or a failed delete re-sends it
// (once its lease expires): duplicates are bounded by the rows claimed at the
// time, at most BatchSize per relay. A relay slower than the lease may see its
// rows claimed and sent by another relay as well. The message UUID, payload
// and metadata are those stored; poisoned messages keep them and gain
// metadata.FallbackAttempts, FallbackFirstError, FallbackLastError,
// DeadLetterReason and OriginalTopic. No ordering is guaranteed across
// retries; with Concurrency 1 a single relay sends in due order. Run finishes
// the current batch's bookkeeping before returning.
type Relay struct {
	store         queue.Queue
	queue         string
	owner         string
	pub           message.Publisher
	policy        policy.Policy
	poll          time.Duration
	batch         int
	concurrency   int
	threshold     int
	outageBackoff policy.Backoff
	poisonStore   queue.Queue
	poisonQueue   string
	poisonTopic   string
	poisonPub     message.Publisher
	storeTimeout  time.Duration
	clock         clock.Clock
	rand          func() float64
	logger        watermill.LoggerAdapter

	sentHooks     []SentHook
	failedHooks   []FailedHook
	poisonedHooks []PoisonedHook
	outageHooks   []OutageHook

	wake      chan struct{} // capacity 1: Notify cuts the idle wait short
	running   atomic.Bool
	closedErr atomic.Pointer[error] // the publisher said it is closed: Run stops
	storeDown bool                  // claims failing; touched by the Run goroutine only

	mu          sync.Mutex // guards consecutive, down, outageStep
	consecutive int
	down        bool
	outageStep  int

	claimed, sent, failed, poisoned, requeued, storeErrors atomic.Uint64
}

// NewRelay returns a Relay; call Run to start it.
func NewRelay(cfg RelayConfig, logger watermill.LoggerAdapter) (*Relay, error) {
	// Before the defaults: a typed nil passes the == nil checks of Validate,
	// and PoisonPublisher would inherit it.
	if err := errors.Join(nilcheck.Optional(ErrInvalidConfig, "Publisher", cfg.Publisher), nilcheck.Optional(ErrInvalidConfig, "PoisonPublisher", cfg.PoisonPublisher),
		nilcheck.Optional(ErrInvalidConfig, "Clock", cfg.Clock), nilcheck.Optional(ErrInvalidConfig, "OutageBackoff", cfg.OutageBackoff)); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	owner := cfg.Owner
	if owner == "" {
		owner = cfg.Store.Owner()
	}
	return &Relay{
		store:         cfg.Store,
		queue:         cfg.Queue,
		owner:         owner,
		pub:           cfg.Publisher,
		policy:        cfg.Policy,
		poll:          cfg.PollInterval,
		batch:         cfg.BatchSize,
		concurrency:   cfg.Concurrency,
		threshold:     cfg.FailureThreshold,
		outageBackoff: cfg.OutageBackoff,
		poisonStore:   cfg.PoisonStore,
		poisonQueue:   cfg.PoisonQueue,
		poisonTopic:   cfg.PoisonTopic,
		poisonPub:     cfg.PoisonPublisher,
		storeTimeout:  cfg.StoreTimeout,
		clock:         cfg.Clock,
		rand:          cfg.Rand,
		logger: logger.With(watermill.LogFields{
			"component": "fallback.Relay", "table": tableOf(cfg.Store), "queue": cfg.Queue,
		}),
		sentHooks:     hooks.Of[SentHook](cfg.Hooks),
		failedHooks:   hooks.Of[FailedHook](cfg.Hooks),
		poisonedHooks: hooks.Of[PoisonedHook](cfg.Hooks),
		outageHooks:   hooks.Of[OutageHook](cfg.Hooks),
		wake:          make(chan struct{}, 1),
	}, nil
}

// Notify tells the relay that rows were just committed to its queue, so a
// Run waiting out its PollInterval claims at once instead. It never blocks,
// and calls made while the relay is busy fold into one. It does not shorten
// the waits of an outage (OutageBackoff) or of a failing store: a writer
// committing quickly must not turn probes of a down broker into a stream.
// Safe for concurrent use, before and during Run.
func (r *Relay) Notify() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run drains the queue until ctx ends, then returns nil after finishing the
// bookkeeping of the batch in hand (sent rows deleted, untried rows released).
// Sends in flight when ctx ends get ctx as their message context. Run returns
// ErrAlreadyRunning if the Relay is already running.
//
// When the Publisher or PoisonPublisher answers that it is closed (an error
// matching policy.ErrClosed), Run releases the batch in hand without charging
// an attempt and returns an error matching ErrPublisherClosed and the
// publisher's error: nothing is poisoned, and the rows wait in the store for
// a relay with an open publisher. A later Run of the same Relay stops the
// same way at its first send unless the publisher is open again.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer r.running.Store(false)
	r.closedErr.Store(nil)
	r.logger.Info("Relay started", watermill.LogFields{"owner": r.owner})
	defer r.logger.Info("Relay stopped", nil)
	for ctx.Err() == nil {
		wait := r.step(ctx)
		if errp := r.closedErr.Load(); errp != nil {
			r.logger.Error("The relay's publisher is closed; stopping with the rows left in the store", *errp, nil)
			return fmt.Errorf("%w: %w", ErrPublisherClosed, *errp)
		}
		if wait <= 0 {
			continue
		}
		r.mu.Lock()
		wake := r.wake
		if r.down || r.storeDown {
			wake = nil // Notify must not cut an outage's backoff short
		}
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-r.clock.After(wait):
		case <-wake:
		}
	}
	return nil
}

// step claims and processes one batch and returns how long to wait before the
// next one.
func (r *Relay) step(ctx context.Context) time.Duration {
	r.mu.Lock()
	down := r.down
	r.mu.Unlock()
	limit := r.batch
	if down {
		limit = 1
	}
	claimedAt := r.clock.Now()
	rows, err := r.store.Claim(ctx, queue.ClaimRequest{Queue: r.queue, Owner: r.owner, Limit: limit})
	if err != nil {
		if ctx.Err() == nil {
			r.storeErrors.Add(1)
			if !r.storeDown {
				r.storeDown = true
				r.logger.Error("Claim failed; retrying every poll interval", err, nil)
			}
		}
		return r.poll
	}
	if r.storeDown {
		r.storeDown = false
		r.logger.Info("Claims work again", nil)
	}
	if len(rows) == 0 {
		return r.poll
	}
	r.claimed.Add(uint64(len(rows)))
	r.process(ctx, rows, claimedAt)

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		r.outageStep++
		return r.outageBackoff.Delay(r.outageStep)
	}
	if len(rows) < limit {
		return r.poll
	}
	return 0
}

type outcome int

const (
	untried outcome = iota
	sentOK
	sendFailed
)

type result struct {
	outcome outcome
	err     error
	start   time.Time // when the send started
}

func (r *Relay) process(ctx context.Context, rows []queue.Row, claimedAt time.Time) {
	// Rows not sent by four fifths of the lease are released instead: after
	// the lease another relay may claim them, and sending them then could
	// duplicate its sends.
	leaseEnd := claimedAt.Add(r.store.LeaseTimeout() * 4 / 5)
	results := make([]result, len(rows))
	var (
		stop atomic.Bool
		next atomic.Int64
	)
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(rows) {
				return
			}
			if stop.Load() || ctx.Err() != nil || r.clock.Now().After(leaseEnd) {
				continue // stays untried
			}
			results[i] = r.send(ctx, &rows[i])
			if results[i].outcome == untried && r.closedErr.Load() != nil {
				stop.Store(true)
				continue
			}
			if results[i].outcome == sendFailed && r.noteFailure(results[i].err) {
				stop.Store(true)
			}
		}
	}
	if n := min(r.concurrency, len(rows)); n <= 1 {
		work()
	} else {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() { defer wg.Done(); work() }()
		}
		wg.Wait()
	}
	r.finish(ctx, rows, results)
}

func (r *Relay) send(ctx context.Context, row *queue.Row) result {
	msg := row.ToMessage()
	msg.SetContext(ctx)
	start := r.clock.Now()
	err := r.pub.Publish(row.Topic, msg)
	if err != nil {
		if ctx.Err() != nil {
			// Stopping: the send was cut short, not refused. The row is
			// released unchanged (the broker may still have it: a duplicate).
			return result{outcome: untried}
		}
		if errors.Is(err, policy.ErrClosed) {
			// The publisher is closed (shut down with the rest of the
			// process, for example): the message is not at fault. Released
			// unchanged, and Run stops.
			r.closedErr.CompareAndSwap(nil, &err)
			return result{outcome: untried}
		}
		return result{outcome: sendFailed, err: err, start: start}
	}
	now := r.clock.Now()
	r.sent.Add(1)
	r.noteSuccess()
	for _, h := range r.sentHooks {
		h.OnRelaySent(SentParams{RowID: row.ID, Topic: row.Topic, UUID: row.UUID, Attempt: row.Attempts + 1,
			Age: now.Sub(row.CreatedAt), Duration: now.Sub(start), StartedAt: start, Row: *row})
	}
	return result{outcome: sentOK, start: start}
}

func (r *Relay) permanent(err error) bool {
	return policy.IsPermanent(err) || (r.policy.Classifier != nil && r.policy.Classifier(err) == policy.Stop)
}

// noteFailure counts a failed send and reports whether the relay is (now)
// in the outage state, which stops the batch.
func (r *Relay) noteFailure(err error) bool {
	if r.permanent(err) {
		// The broker answered: it is up, this message is the problem.
		return false
	}
	r.mu.Lock()
	r.consecutive++
	n := r.consecutive
	changed := false
	if !r.down && n >= r.threshold {
		r.down, r.outageStep, changed = true, 0, true
	}
	down := r.down
	r.mu.Unlock()
	if changed {
		r.logger.Error("Publisher looks down; probing with one message at a time", err,
			watermill.LogFields{"consecutive_failures": n})
		for _, h := range r.outageHooks {
			h.OnRelayOutage(OutageParams{Down: true, ConsecutiveFailures: n})
		}
	}
	return down
}

func (r *Relay) noteSuccess() {
	r.mu.Lock()
	r.consecutive = 0
	changed := r.down
	r.down, r.outageStep = false, 0
	r.mu.Unlock()
	if changed {
		r.logger.Info("Publisher is back; resuming batches", nil)
		for _, h := range r.outageHooks {
			h.OnRelayOutage(OutageParams{Down: false})
		}
	}
}

// finish records the batch's outcomes. It runs even when ctx has ended, so
// that sent rows are deleted and untried rows released promptly.
func (r *Relay) finish(ctx context.Context, rows []queue.Row, results []result) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.storeTimeout)
	defer cancel()
	var sentIDs, untriedIDs []int64
	for i, res := range results {
		switch res.outcome {
		case sentOK:
			sentIDs = append(sentIDs, rows[i].ID)
		case untried:
			untriedIDs = append(untriedIDs, rows[i].ID)
		}
	}
	if len(sentIDs) > 0 {
		if err := r.store.Delete(fctx, sentIDs...); err != nil {
			r.storeErrors.Add(1)
			r.logger.Error("Deleting sent rows failed; they will be sent again after their lease", err,
				watermill.LogFields{"rows": len(sentIDs)})
		}
	}
	now := r.clock.Now()
	for i, res := range results {
		if res.outcome == sendFailed {
			r.fail(fctx, &rows[i], res, now)
		}
	}
	if len(untriedIDs) > 0 {
		if err := r.store.Requeue(fctx, now, untriedIDs...); err != nil && !errors.Is(err, queue.ErrNotFound) {
			r.storeErrors.Add(1)
			r.logger.Error("Releasing untried rows failed; they come back after their lease", err,
				watermill.LogFields{"rows": len(untriedIDs)})
		} else {
			r.requeued.Add(uint64(len(untriedIDs)))
		}
	}
}

func (r *Relay) fail(ctx context.Context, row *queue.Row, res result, now time.Time) {
	sendErr := res.err
	attempts := row.Attempts + 1
	delay := r.policy.JitteredDelay(attempts, r.rand())
	reason := ""
	switch {
	case r.permanent(sendErr):
		reason = ReasonPermanent
	case r.policy.Exhausted(attempts), !r.policy.WithinBudget(now.Sub(row.CreatedAt), delay):
		reason = ReasonMaxAttempts
	}
	if reason != "" {
		err := r.poison(ctx, row, attempts, reason, sendErr)
		if err == nil {
			r.poisoned.Add(1)
			for _, h := range r.poisonedHooks {
				h.OnRelayPoisoned(PoisonedParams{RowID: row.ID, Topic: row.Topic, UUID: row.UUID,
					Attempts: attempts, Reason: reason, Err: sendErr, Row: *row})
			}
			return
		}
		if errors.Is(err, policy.ErrClosed) {
			// The poison publisher is closed: release the row unchanged, and
			// Run stops.
			r.closedErr.CompareAndSwap(nil, &err)
			if err := r.store.Requeue(ctx, now, row.ID); err != nil && !errors.Is(err, queue.ErrNotFound) {
				r.storeErrors.Add(1)
			} else {
				r.requeued.Add(1)
			}
			return
		}
		r.storeErrors.Add(1)
		r.logger.Error("Moving a row to poison failed; keeping it for another attempt", err,
			watermill.LogFields{"row_id": row.ID, "reason": reason})
		if delay < r.poll {
			delay = r.poll
		}
	}
	r.failed.Add(1)
	nextAt := now.Add(delay)
	if err := r.store.Reschedule(ctx, row.ID, nextAt, sendErr.Error()); err != nil && !errors.Is(err, queue.ErrNotFound) {
		r.storeErrors.Add(1)
		r.logger.Error("Rescheduling a failed row failed; it comes back after its lease", err,
			watermill.LogFields{"row_id": row.ID})
	}
	for _, h := range r.failedHooks {
		h.OnRelayFailed(FailedParams{RowID: row.ID, Topic: row.Topic, UUID: row.UUID, Attempt: attempts,
			Err: sendErr, NextAttemptAt: nextAt, StartedAt: res.start, Row: *row})
	}
}

func (r *Relay) poison(ctx context.Context, row *queue.Row, attempts int, reason string, sendErr error) error {
	md := make(map[string]string, len(row.Metadata)+5)
	for k, v := range row.Metadata {
		md[k] = v
	}
	firstErr := row.FirstError
	if firstErr == "" {
		firstErr = sendErr.Error()
	}
	md[metadata.FallbackAttempts] = strconv.Itoa(attempts)
	md[metadata.FallbackFirstError] = firstErr
	md[metadata.FallbackLastError] = sendErr.Error()
	md[metadata.DeadLetterReason] = reason
	md[metadata.OriginalTopic] = row.Topic

	if r.poisonTopic != "" {
		msg := message.NewMessage(row.UUID, row.Payload)
		for k, v := range md {
			msg.Metadata.Set(k, v)
		}
		msg.SetContext(ctx)
		if err := r.poisonPub.Publish(r.poisonTopic, msg); err != nil {
			return err
		}
		return r.store.Delete(ctx, row.ID)
	}
	pm := queue.Row{
		Queue: r.poisonQueue, Topic: row.Topic, UUID: row.UUID, Payload: row.Payload, Metadata: md,
		Attempts: attempts, CreatedAt: row.CreatedAt, FirstError: firstErr,
		LastError: reason + ": " + sendErr.Error(),
	}
	src, dst, ok := sameDB(r.store, r.poisonStore)
	if !ok {
		// Two databases: a crash between the two writes leaves the message
		// in both places (a duplicate), never in neither.
		if err := r.poisonStore.Insert(ctx, pm); err != nil {
			return err
		}
		return r.store.Delete(ctx, row.ID)
	}
	tx, err := src.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := dst.InsertTx(ctx, tx, pm); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := src.DeleteTx(ctx, tx, row.ID); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// RelayStats are the relay's counters since it was created, and the current
// state of its queue.
type RelayStats struct {
	Claimed     uint64 // rows claimed
	Sent        uint64 // rows the publisher accepted
	Failed      uint64 // failed sends that left the row for a later attempt
	Poisoned    uint64 // rows moved to the poison store or topic
	Requeued    uint64 // claimed rows released untried (outage, shutdown)
	StoreErrors uint64 // failed store operations
	// Down is true while the relay considers the publisher down and probes.
	Down bool
	// Backlog is the number of rows in the queue, Due those ready to send.
	Backlog, Due int64
	// OldestAge is the age of the oldest row; zero when the queue is empty.
	OldestAge time.Duration
}

// Stats returns the counters and queries the store for the backlog. On a
// store error the counters are still returned, with the error.
func (r *Relay) Stats(ctx context.Context) (RelayStats, error) {
	r.mu.Lock()
	down := r.down
	r.mu.Unlock()
	s := RelayStats{
		Claimed: r.claimed.Load(), Sent: r.sent.Load(), Failed: r.failed.Load(),
		Poisoned: r.poisoned.Load(), Requeued: r.requeued.Load(), StoreErrors: r.storeErrors.Load(),
		Down: down,
	}
	st, err := r.store.Stats(ctx, r.queue)
	if err != nil {
		return s, err
	}
	s.Backlog, s.Due = st.Backlog, st.Due
	if !st.Oldest.IsZero() {
		s.OldestAge = r.clock.Now().Sub(st.Oldest)
	}
	return s, nil
}
