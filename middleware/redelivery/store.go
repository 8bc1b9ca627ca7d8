package redelivery

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

// storeScheduler parks waiting messages in the queue store (Config.Store)
// under the queue "<group>/<handler>" and runs a fallback.Relay on that queue:
// the one claim/publish/delete loop of the module, with its lease cut-off,
// outage probing and poison queue. The relay publishes due rows to the retry
// topic through Config.Publisher and retries a failed publish every
// PublishRetryInterval, without limit; a row the publisher refuses
// permanently goes to the queue "<group>/<handler>/poison".
type storeScheduler struct {
	r         *Redelivery
	relay     *fallback.Relay
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	ready     chan struct{}
	readyOnce sync.Once
}

func newStoreScheduler(r *Redelivery) (*storeScheduler, error) {
	relay, err := fallback.NewRelay(fallback.RelayConfig{
		Store:        r.cfg.Store,
		Queue:        r.queue,
		Publisher:    r.cfg.Publisher,
		Policy:       policy.Policy{Backoff: policy.Fixed(r.cfg.PublishRetryInterval)}, // no attempt limit
		PollInterval: r.cfg.PollInterval,
		BatchSize:    r.cfg.ClaimBatch,
		Owner:        r.cfg.Owner,
		Clock:        r.cfg.Clock,
		Hooks:        []any{relayHooks{r}},
	}, r.logger)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &storeScheduler{r: r, relay: relay, ctx: ctx, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	go s.run()
	return s, nil
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
	if err := s.relay.Run(s.ctx); err != nil && !errors.Is(err, context.Canceled) {
		// The publisher is closed: the rows wait in the store for the next
		// instance.
		s.r.logger.Error("The durable poller stopped", err, nil)
	}
}

// relayHooks reports the relay's publishes to the retry topic as
// redeliveries.
type relayHooks struct{ r *Redelivery }

func (h relayHooks) OnRelaySent(p fallback.SentParams) {
	h.r.fireRedelivered(p.UUID, parseCount(p.Row.Metadata[RedeliveryCount]), p.Row.CreatedAt, p.Row.NextAttemptAt, p.StartedAt, nil)
}

func (h relayHooks) OnRelayFailed(p fallback.FailedParams) {
	h.r.logger.Error("Publishing a due message to the retry topic failed; will try again", p.Err,
		watermill.LogFields{"message_uuid": p.UUID, "retry_topic": p.Topic})
	h.r.fireRedelivered(p.UUID, parseCount(p.Row.Metadata[RedeliveryCount]), p.Row.CreatedAt, p.Row.NextAttemptAt, p.StartedAt, p.Err)
}

func (h relayHooks) OnRelayPoisoned(p fallback.PoisonedParams) {
	h.r.logger.Error("The retry topic's publisher refused a due message permanently; moved it to the poison queue", p.Err,
		watermill.LogFields{"message_uuid": p.UUID, "retry_topic": p.Topic, "poison_queue": h.r.queue + "/poison"})
	h.r.fireRedelivered(p.UUID, parseCount(p.Row.Metadata[RedeliveryCount]), p.Row.CreatedAt, p.Row.NextAttemptAt, h.r.cfg.Clock.Now(), p.Err)
}
