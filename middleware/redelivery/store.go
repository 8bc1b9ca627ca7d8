package redelivery

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

// storeScheduler parks waiting messages in the queue store (Config.Store) under the queue
// "<group>/<handler>" and runs one poller that claims due rows, publishes them
// to the retry topic and deletes them.
type storeScheduler struct {
	r         *Redelivery
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	ready     chan struct{}
	readyOnce sync.Once
}

func newStoreScheduler(r *Redelivery) *storeScheduler {
	ctx, cancel := context.WithCancel(context.Background())
	s := &storeScheduler{r: r, ctx: ctx, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	go s.run()
	return s
}

func (s *storeScheduler) start() { s.readyOnce.Do(func() { close(s.ready) }) }

func (s *storeScheduler) schedule(ctx context.Context, msg *message.Message, _ int, failed, due time.Time, lastErr string) error {
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	row := queue.FromMessage(s.r.queue, s.r.cfg.RetryTopic, msg)
	row.NextAttemptAt = due
	row.CreatedAt = failed
	row.LastError = lastErr
	err := s.r.cfg.Store.Insert(ctx, row)
	if queue.IsInvalidInput(err) {
		// The row can never be stored: nacking would loop forever.
		return policy.Permanent(err)
	}
	return err
}

func (s *storeScheduler) close() error {
	s.cancel()
	<-s.done
	return nil
}

func (s *storeScheduler) run() {
	defer close(s.done)
	// Publishing before the retry topic is subscribed would lose messages on
	// backends that drop messages nobody subscribes to yet (gochannel, AMQP
	// fanout before the queue exists): wait for Start.
	select {
	case <-s.ready:
	case <-s.ctx.Done():
		return
	}
	clk := s.r.cfg.Clock
	for {
		s.poll()
		select {
		case <-s.ctx.Done():
			return
		case <-clk.After(s.r.cfg.PollInterval):
		}
	}
}

// poll drains every due row, one claimed batch at a time.
func (s *storeScheduler) poll() {
	r := s.r
	for s.ctx.Err() == nil {
		rows, err := r.cfg.Store.Claim(s.ctx, queue.ClaimRequest{Queue: r.queue, Owner: r.cfg.Owner, Limit: r.cfg.ClaimBatch})
		if err != nil {
			if s.ctx.Err() == nil {
				r.logger.Error("Claiming due messages failed", err, nil)
			}
			return
		}
		if len(rows) == 0 {
			return
		}
		done := make([]int64, 0, len(rows))
		for _, row := range rows {
			msg := row.ToMessage()
			now := r.cfg.Clock.Now()
			err := r.cfg.Publisher.Publish(row.Topic, msg)
			r.fireRedelivered(row.UUID, r.reconsumeTimes(msg), row.CreatedAt, row.NextAttemptAt, now, err)
			if err == nil {
				done = append(done, row.ID)
				continue
			}
			r.logger.Error("Publishing a due message to the retry topic failed; will try again", err,
				watermill.LogFields{"message_uuid": row.UUID, "retry_topic": row.Topic})
			if rerr := r.cfg.Store.Reschedule(s.ctx, row.ID, now.Add(r.cfg.PublishRetryInterval), err.Error()); rerr != nil && s.ctx.Err() == nil {
				// The lease runs out and the row is claimed again.
				r.logger.Error("Rescheduling a due message failed", rerr, watermill.LogFields{"message_uuid": row.UUID})
			}
		}
		if len(done) > 0 {
			// A failed delete leaves published rows to be published again when
			// their lease ends: duplicates, never losses.
			if err := r.cfg.Store.Delete(context.WithoutCancel(s.ctx), done...); err != nil {
				r.logger.Error("Deleting published messages failed; they will be published again", err, nil)
			}
		}
		if len(rows) < r.cfg.ClaimBatch {
			return
		}
	}
}
