package fallback

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/internal/partial"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

// DefaultStoreTimeout bounds one store write when Config.StoreTimeout is zero.
const DefaultStoreTimeout = 10 * time.Second

// Config configures a Publisher.
type Config struct {
	// Store receives messages whose send failed, for example a
	// *sqlstore.Store. Required.
	Store queue.Queue
	// Queue is the store queue written to. Default "" (a Relay's default).
	Queue string
	// ShouldStore decides whether a send error is worth storing. Default:
	// every error except permanent ones (policy.IsPermanent) and context
	// cancellation or deadline (the caller gave up; policy.Policy.Retryable).
	// Errors not stored are returned to the caller.
	ShouldStore func(err error) bool
	// StoreTimeout bounds each store write. The write ignores the message
	// context's cancellation (the send failed, the message must not be lost
	// because the caller is leaving) but keeps its values. Default
	// DefaultStoreTimeout (10s).
	StoreTimeout time.Duration
	// Hooks are StoredHook and StoreFailedHook values.
	Hooks []any
}

func (c *Config) setDefaults() {
	if c.ShouldStore == nil {
		c.ShouldStore = policy.Policy{}.Retryable
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = DefaultStoreTimeout
	}
}

// Validate reports every problem of the config at once, each error wrapping
// ErrInvalidConfig and naming its field.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, fieldError("Store", "required"))
	}
	if err := queue.ValidateQueue(c.Queue); err != nil {
		errs = append(errs, fieldError("Queue", "%w", err))
	}
	if c.StoreTimeout < 0 {
		errs = append(errs, fieldError("StoreTimeout", "%v: must be >= 0", c.StoreTimeout))
	}
	if err := hooks.Validate(ErrInvalidConfig, c.Hooks, hooks.Is[StoredHook], hooks.Is[StoreFailedHook]); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Publisher sends through an inner publisher and, when the send fails with a
// retryable error, stores the messages in a queue.Queue (such as a
// sqlstore.Store) for a Relay to send later. It sits between the async publisher and the retry publisher:
// async(fallback(retry(broker))).
//
// Delivery guarantees: Publish returns nil only when the inner publisher
// accepted the messages or they are committed in the store; from then on the
// Relay owns them (at-least-once). It returns the send error unchanged for bad
// input and permanent errors (nothing is stored), and a NotStoredError
// (ErrNotStored, with both causes) when the store write fails too. When a
// multi-message Publish fails, all its messages are stored, except those the
// error reports as accepted (an error with an Accepted() []string method, like
// retry.PartialError, and by position when it also has AcceptedIndexes, like
// retry.PartialIndexError: two messages of one call may share a UUID); others the broker had taken are duplicates, and so is a
// message whose send timed out after the broker stored it. Every message keeps
// its UUID through the store and the relay. Publish is safe for concurrent
// use; Close closes the inner publisher, not the store.
type Publisher struct {
	inner       message.Publisher
	store       queue.Queue
	queue       string
	shouldStore func(error) bool
	timeout     time.Duration
	stored      []StoredHook
	storeFailed []StoreFailedHook
	logger      watermill.LoggerAdapter
	closed      atomic.Bool

	sent, storedN, rejected, notStored atomic.Uint64
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher wraps inner.
func NewPublisher(inner message.Publisher, cfg Config, logger watermill.LoggerAdapter) (*Publisher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := nilcheck.Required(ErrInvalidConfig, "inner publisher", inner); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Publisher{
		inner:       inner,
		store:       cfg.Store,
		queue:       cfg.Queue,
		shouldStore: cfg.ShouldStore,
		timeout:     cfg.StoreTimeout,
		stored:      hooks.Of[StoredHook](cfg.Hooks),
		storeFailed: hooks.Of[StoreFailedHook](cfg.Hooks),
		logger:      logger.With(watermill.LogFields{"component": "fallback.Publisher"}),
	}, nil
}

// PublisherDecorator returns a decorator for message.Router that wraps each
// publisher in a fallback Publisher with cfg.
func PublisherDecorator(cfg Config, logger watermill.LoggerAdapter) message.PublisherDecorator {
	return func(pub message.Publisher) (message.Publisher, error) {
		return NewPublisher(pub, cfg, logger)
	}
}

// Publish sends msgs through the inner publisher and stores them if that
// fails with an error worth storing. Bad input by the rules every reliamq
// publisher shares (pkg/msgcheck: no messages, a nil message, an empty or
// invalid UUID, metadata no backend can carry) is rejected before anything is
// sent, with a permanent error matching queue.ErrInvalidMessage or
// queue.ErrInvalidMetadata (the same values as sqlstore's) and the msgcheck
// sentinel. The store's own rules (its topic pattern, for example) apply only
// when a message is stored: a topic the broker accepts and the store refuses
// is sent normally while the broker is up, and is returned as a
// NotStoredError when its send fails.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return policy.Permanent(ErrClosed)
	}
	if err := checkMessages(msgs); err != nil {
		return err
	}
	sendErr := p.inner.Publish(topic, msgs...)
	if sendErr == nil {
		p.sent.Add(uint64(len(msgs)))
		return nil
	}
	if !p.shouldStore(sendErr) {
		p.rejected.Add(uint64(len(msgs)))
		return sendErr
	}
	kept := notAccepted(sendErr, msgs)
	p.sent.Add(uint64(len(msgs) - len(kept)))
	if len(kept) == 0 {
		return nil
	}
	msgs = kept
	rows := make([]queue.Row, len(msgs))
	firstErr := sendErr.Error()
	for i, m := range msgs {
		rows[i] = queue.FromMessage(p.queue, topic, m)
		rows[i].FirstError = firstErr
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(msgs[0].Context()), p.timeout)
	defer cancel()
	if storeErr := p.store.Insert(ctx, rows...); storeErr != nil {
		p.notStored.Add(uint64(len(msgs)))
		uuids := make([]string, len(msgs))
		for i, m := range msgs {
			uuids[i] = m.UUID
			for _, h := range p.storeFailed {
				h.OnFallbackStoreFailed(StoreFailedParams{Topic: topic, UUID: m.UUID, SendErr: sendErr, StoreErr: storeErr})
			}
		}
		p.logger.Error("Send failed and the fallback store failed too", storeErr,
			watermill.LogFields{"topic": topic, "messages": len(msgs), "send_error": sendErr.Error()})
		return &NotStoredError{Topic: topic, UUIDs: uuids, SendErr: sendErr, StoreErr: storeErr}
	}
	p.storedN.Add(uint64(len(msgs)))
	for _, m := range msgs {
		for _, h := range p.stored {
			h.OnFallbackStored(StoredParams{Topic: topic, UUID: m.UUID, SendErr: sendErr})
		}
	}
	return nil
}

// checkMessages applies the shared message rules (pkg/msgcheck) and wraps
// the queue sentinel of the kind of problem.
func checkMessages(msgs []*message.Message) error {
	if len(msgs) == 0 {
		return policy.Permanent(fmt.Errorf("%w: no messages", queue.ErrInvalidMessage))
	}
	err := msgcheck.Messages(msgs)
	if err == nil {
		return nil
	}
	sentinel := queue.ErrInvalidMessage
	if errors.Is(err, msgcheck.ErrInvalidMetadata) {
		sentinel = queue.ErrInvalidMetadata
	}
	return policy.Permanent(fmt.Errorf("%w: %w", sentinel, err))
}

// notAccepted drops the messages a partial failure reports as accepted: they
// were sent, and storing them would only make duplicates. Positions win over
// UUIDs (see retry.PartialIndexError).
func notAccepted(sendErr error, msgs []*message.Message) []*message.Message {
	accepted := partial.Accepted(sendErr, msgs)
	if accepted == nil {
		return msgs
	}
	var kept []*message.Message
	for i, m := range msgs {
		if !accepted[i] {
			kept = append(kept, m)
		}
	}
	return kept
}

// Close makes later Publish calls fail with ErrClosed and closes the inner
// publisher. The store's database stays open.
func (p *Publisher) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return p.inner.Close()
}

// PublisherStats counts messages by outcome since the Publisher was created.
type PublisherStats struct {
	Sent      uint64 // accepted by the inner publisher
	Stored    uint64 // stored after a failed send
	Rejected  uint64 // send error returned to the caller, not stored
	NotStored uint64 // send failed and store failed (ErrNotStored)
}

// Stats returns the counters.
func (p *Publisher) Stats() PublisherStats {
	return PublisherStats{Sent: p.sent.Load(), Stored: p.storedN.Load(), Rejected: p.rejected.Load(), NotStored: p.notStored.Load()}
}
