package redelivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"

	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

// DurableConfig configures NewDurable.
type DurableConfig struct {
	// Store keeps the waiting messages (a queue.Queue such as a
	// *sqlstore.Store), under the queue "<ConsumerGroup>/<Handler>".
	// Required. Give it the Redelivery's Clock. Neither the scheduler nor
	// the Redelivery closes it.
	Store queue.Queue
	// PollInterval is how often the poller looks for due messages; it bounds
	// how late a retry can be. Default DefaultPollInterval.
	PollInterval time.Duration
	// ClaimBatch is how many due messages the poller claims at once. Default
	// DefaultClaimBatch.
	ClaimBatch int
	// Owner names this instance in store leases. Default: a random UUID.
	Owner string
	// PublishRetryInterval is how long a due message waits before a failed
	// publish to the retry topic is tried again, without limit; a permanent
	// refusal moves the row to the queue "<group>/<handler>/poison".
	// Default DefaultPublishRetryInterval.
	PublishRetryInterval time.Duration
}

func (c *DurableConfig) setDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ClaimBatch == 0 {
		c.ClaimBatch = DefaultClaimBatch
	}
	if c.Owner == "" {
		c.Owner = uuid.NewString()
	}
	if c.PublishRetryInterval == 0 {
		c.PublishRetryInterval = DefaultPublishRetryInterval
	}
}

// Validate reports every problem of c at once, each wrapping
// ErrInvalidConfig and naming its field ("Scheduler: Store: required").
// Open calls it after applying defaults.
func (c DurableConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: Scheduler: %s: "+format, append([]any{ErrInvalidConfig, field}, args...)...))
	}
	if c.Store == nil {
		bad("Store", "required")
	}
	if c.PollInterval < 0 {
		bad("PollInterval", "%v: must be positive", c.PollInterval)
	}
	if c.ClaimBatch < 0 {
		bad("ClaimBatch", "%d: must be positive", c.ClaimBatch)
	}
	if c.PublishRetryInterval < 0 {
		bad("PublishRetryInterval", "%v: must be positive", c.PublishRetryInterval)
	}
	return errors.Join(errs...)
}

// Durable is the Scheduler that parks waiting messages in a queue store
// (DurableConfig.Store) under the queue "<group>/<handler>" with their due
// time, and runs a fallback.Relay on that queue: the one
// claim/publish/delete loop of the module, with its lease cut-off, outage
// probing and poison queue. The relay publishes due rows to the retry topic
// (ByRetryTopic) every PollInterval and retries a failed publish every
// PublishRetryInterval, without limit; a row the publisher refuses
// permanently goes to the queue "<group>/<handler>/poison". Rows survive
// restarts; the store's leases let several instances share the queue, each
// row published by one at a time. Nothing is lost.
type Durable struct {
	cfg DurableConfig
	t   Target

	mu     sync.Mutex
	opened bool
	relay  *fallback.Relay
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

var _ Scheduler = (*Durable)(nil)

// NewDurable returns a store-backed Scheduler for Config.Scheduler. Its
// config is checked by New.
func NewDurable(cfg DurableConfig) *Durable { return &Durable{cfg: cfg} }

// Config returns the configuration, with defaults applied once opened.
func (s *Durable) Config() DurableConfig { return s.cfg }

// Route is ByRetryTopic.
func (s *Durable) Route() Route { return ByRetryTopic }

// Open checks the config and starts the poller, which publishes nothing
// before t.Ready is closed.
func (s *Durable) Open(t Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opened {
		return fmt.Errorf("%w: Scheduler: already serves another Redelivery", ErrInvalidConfig)
	}
	cfg := s.cfg
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	relay, err := fallback.NewRelay(fallback.RelayConfig{
		Store:        cfg.Store,
		Queue:        t.Queue,
		Publisher:    t.Publisher,
		Policy:       policy.Policy{Backoff: policy.Fixed(cfg.PublishRetryInterval)}, // no attempt limit
		PollInterval: cfg.PollInterval,
		BatchSize:    cfg.ClaimBatch,
		Owner:        cfg.Owner,
		Clock:        t.Clock,
		Hooks:        []any{relayHooks{t}},
	}, t.Logger)
	if err != nil {
		return fmt.Errorf("%w: Scheduler: %w", ErrInvalidConfig, err)
	}
	s.cfg, s.t, s.relay, s.opened = cfg, t, relay, true
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.done = make(chan struct{})
	go s.run()
	return nil
}

// Schedule inserts the message in the store, due at s.Due(). The wait is
// s.Delay (plus up to PollInterval).
func (s *Durable) Schedule(ctx context.Context, sc Scheduled) (time.Duration, error) {
	if s.ctx == nil || s.ctx.Err() != nil {
		return 0, ErrClosed
	}
	row := queue.FromMessage(s.t.Queue, s.t.RetryTopic, sc.Message)
	row.NextAttemptAt = sc.Due()
	row.CreatedAt = sc.FailedAt
	row.LastError = sc.LastError
	err := s.cfg.Store.Insert(ctx, row)
	if queue.IsInvalidInput(err) {
		// The row can never be stored: nacking would loop forever.
		return 0, policy.Permanent(err)
	}
	if err != nil {
		return 0, err
	}
	return sc.Delay, nil
}

// Close stops the poller and waits for a publish in flight; the rows stay
// in the store.
func (s *Durable) Close() error {
	s.mu.Lock()
	opened := s.opened
	s.mu.Unlock()
	if !opened {
		return nil
	}
	s.cancel()
	<-s.done
	return nil
}

func (s *Durable) run() {
	defer close(s.done)
	// Publishing before the retry topic is subscribed would lose messages on
	// backends that drop messages nobody subscribes to yet (gochannel, AMQP
	// fanout before the queue exists): wait for Ready.
	select {
	case <-s.t.Ready:
	case <-s.ctx.Done():
		return
	}
	if err := s.relay.Run(s.ctx); err != nil && !errors.Is(err, context.Canceled) {
		// The publisher is closed: the rows wait in the store for the next
		// instance.
		s.t.Logger.Error("The durable poller stopped", err, nil)
	}
}

// relayHooks reports the relay's publishes to the retry topic as
// redeliveries.
type relayHooks struct{ t Target }

func (h relayHooks) redelivered(uuid string, row queue.Row, at time.Time, err error) {
	h.t.Observer.OnRedelivered(RedeliveredParams{
		MessageUUID: uuid, ConsumerGroup: h.t.ConsumerGroup, Handler: h.t.Handler, RetryTopic: h.t.RetryTopic,
		Retry: parseCount(row.Metadata[RedeliveryCount]), FailedAt: row.CreatedAt, Due: row.NextAttemptAt, PublishedAt: at, Err: err,
	})
}

func (h relayHooks) OnRelaySent(p fallback.SentParams) {
	h.redelivered(p.UUID, p.Row, p.StartedAt, nil)
}

func (h relayHooks) OnRelayFailed(p fallback.FailedParams) {
	h.t.Logger.Error("Publishing a due message to the retry topic failed; will try again", p.Err,
		watermill.LogFields{"message_uuid": p.UUID, "retry_topic": p.Topic})
	h.redelivered(p.UUID, p.Row, p.StartedAt, p.Err)
}

func (h relayHooks) OnRelayPoisoned(p fallback.PoisonedParams) {
	h.t.Logger.Error("The retry topic's publisher refused a due message permanently; moved it to the poison queue", p.Err,
		watermill.LogFields{"message_uuid": p.UUID, "retry_topic": p.Topic, "poison_queue": h.t.Queue + "/poison"})
	h.redelivered(p.UUID, p.Row, h.t.Clock.Now(), p.Err)
}
