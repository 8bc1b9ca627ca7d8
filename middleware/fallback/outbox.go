package fallback

import (
	"context"
	"database/sql"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

// OutboxConfig configures an Outbox.
type OutboxConfig struct {
	// Store is where the outbox rows go, for example a *sqlstore.Store; the
	// caller's transactions must be on its database. Required.
	Store queue.TxQueue
	// Queue is the store queue written to; a Relay on the same queue delivers
	// the rows. Default "".
	Queue string
}

// Validate reports every problem of the config at once, each error wrapping
// ErrInvalidConfig and naming its field.
func (c OutboxConfig) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, fieldError("Store", "required"))
	}
	if err := queue.ValidateQueue(c.Queue); err != nil {
		errs = append(errs, fieldError("Queue", "%w", err))
	}
	return errors.Join(errs...)
}

// Outbox writes messages into the store inside the caller's database
// transaction (the transactional outbox pattern).
//
// Delivery guarantees: the messages exist if and only if the transaction
// commits; a Relay on the same store and queue then delivers them
// at-least-once with their UUIDs. Nothing is sent before the commit.
type Outbox struct {
	store queue.TxQueue
	queue string
}

// NewOutbox returns an Outbox. It takes no logger: an Outbox only writes
// inside the caller's transaction and returns every error to the caller, so
// it has nothing to log. Errors match ErrInvalidConfig.
func NewOutbox(cfg OutboxConfig) (*Outbox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Outbox{store: cfg.Store, queue: cfg.Queue}, nil
}

// WriteTx stores msgs for topic inside tx. Bad input is rejected with the
// store's errors (queue.ErrInvalidTopic, queue.ErrInvalidMessage, ...) and writes nothing;
// the caller then decides whether to roll back.
func (o *Outbox) WriteTx(ctx context.Context, tx *sql.Tx, topic string, msgs ...*message.Message) error {
	rows, err := queue.Rows(o.queue, topic, msgs)
	if err != nil {
		return policy.Permanent(err)
	}
	return o.store.InsertTx(ctx, tx, rows...)
}

// TxPublisher returns a message.Publisher whose Publish calls WriteTx with tx
// and ctx, for code written against message.Publisher. It is valid until the
// transaction ends; Close does nothing.
func (o *Outbox) TxPublisher(ctx context.Context, tx *sql.Tx) message.Publisher {
	return txPublisher{o: o, ctx: ctx, tx: tx}
}

type txPublisher struct {
	o   *Outbox
	ctx context.Context
	tx  *sql.Tx
}

func (p txPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.o.WriteTx(p.ctx, p.tx, topic, msgs...)
}

func (p txPublisher) Close() error { return nil }
