package sqlstore

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Store receives the rows. Required.
	Store *Store
	// Queue the rows are written to. Default "" (the fallback relay's default
	// queue).
	Queue string
	// Checker, if set, is asked before every write: a Publish it refuses is
	// refused with its error and nothing is written. Set it to the publisher
	// the relay will send the rows through (a *rocketmq.Publisher), so that
	// the store never keeps a message that publisher would refuse (a payload
	// over its limit, a topic it cannot carry) and that the relay could only
	// poison. Default nil: only the store's own rules apply.
	Checker msgcheck.Checker
}

// Validate reports every problem of the config at once, each error wrapping
// ErrInvalidConfig and naming its field.
func (c PublisherConfig) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, fieldError("Store", "required"))
	}
	if err := ValidateQueue(c.Queue); err != nil {
		errs = append(errs, fieldError("Queue", "%w", err))
	}
	if c.Checker != nil && nilcheck.IsNil(c.Checker) {
		errs = append(errs, fieldError("Checker", "typed nil"))
	}
	return errors.Join(errs...)
}

// Publisher is a message.Publisher that writes messages as rows of a Store
// instead of sending them; a relay sends them later. It suits the async
// publisher's leftovers and tests.
//
// Delivery guarantees: Publish returns nil only after every message of the
// call is committed, in one transaction (all or none). Messages keep their
// UUID, payload and metadata. Publish is safe for concurrent use; Close does
// not close the Store's database.
type Publisher struct {
	store   *Store
	queue   string
	checker msgcheck.Checker
	closed  atomic.Bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher writing to cfg.Store.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Publisher{store: cfg.Store, queue: cfg.Queue, checker: cfg.Checker}, nil
}

// Publish stores msgs for topic. The context of the first message bounds the
// write. Errors: ErrClosed, the Invalid* errors for bad input (an empty UUID
// included), the Checker's error, or an error matching ErrStoreUnavailable.
// Bad input and the Checker's refusals are marked policy.Permanent.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return policy.Permanent(ErrClosed)
	}
	rows, err := Rows(p.queue, topic, msgs)
	if err != nil {
		return err
	}
	for i := range rows {
		if err := validateMessage(&rows[i]); err != nil {
			return err
		}
	}
	if p.checker != nil {
		if err := p.checker.Check(topic, msgs...); err != nil {
			return policy.Permanent(err)
		}
	}
	return p.store.Insert(contextOf(msgs), rows...)
}

// Close makes later Publish calls fail with ErrClosed.
func (p *Publisher) Close() error {
	p.closed.Store(true)
	return nil
}

// Rows converts msgs for topic into rows of queue, rejecting nil messages and
// an empty list with ErrInvalidMessage.
func Rows(queue, topic string, msgs []*message.Message) ([]Message, error) {
	if len(msgs) == 0 {
		return nil, invalid(ErrInvalidMessage, "no messages")
	}
	rows := make([]Message, len(msgs))
	for i, m := range msgs {
		if m == nil {
			return nil, invalid(ErrInvalidMessage, "message %d is nil", i)
		}
		rows[i] = FromMessage(queue, topic, m)
	}
	return rows, nil
}

// contextOf returns the context of the first message, or Background.
func contextOf(msgs []*message.Message) context.Context {
	if len(msgs) > 0 && msgs[0] != nil {
		return msgs[0].Context()
	}
	return context.Background()
}
