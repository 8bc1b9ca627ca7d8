package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/hooks"
	"github.com/reliamq/reliamq/pkg/inbox"
	"github.com/reliamq/reliamq/pkg/policy"
)

// The store types, so that users of the middleware need not import pkg/inbox.
type (
	// Store records processed messages (see pkg/inbox).
	Store = inbox.Store
	// Entry is one claimed key (see pkg/inbox).
	Entry = inbox.Entry
	// Key names one message for one handler of one consumer group.
	Key = inbox.Key
)

// Errors.
var (
	// ErrInvalidConfig is returned by New for a bad Config.
	ErrInvalidConfig = errors.New("inbox: invalid config")
	// ErrClosed is returned by Purge after Close. It matches policy.ErrClosed.
	ErrClosed = policy.NewClosedError("inbox: closed")
	// ErrDuplicate, ErrInProgress and ErrInvalidKey are the store errors of
	// pkg/inbox. The middleware turns ErrDuplicate into an acknowledgement,
	// returns ErrInProgress (retryable) and ErrInvalidKey (marked
	// policy.Permanent) to the router.
	ErrDuplicate  = inbox.ErrDuplicate
	ErrInProgress = inbox.ErrInProgress
	ErrInvalidKey = inbox.ErrInvalidKey
)

// Stats counts what an Inbox did since New.
type Stats struct {
	// Processed counts handler runs whose record was committed.
	Processed int64
	// Duplicates counts deliveries acknowledged without running the handler.
	Duplicates int64
	// Failed counts handler runs that returned an error or panicked (their
	// claim was aborted: nothing recorded).
	Failed int64
	// Purged counts expired records deleted.
	Purged int64
}

// Inbox is the router middleware that runs a handler once per message UUID.
// See the package documentation for its guarantees. It is safe for
// concurrent use by every handler goroutine of the router.
type Inbox struct {
	cfg    Config
	store  inbox.Store
	logger watermill.LoggerAdapter
	dups   []DuplicateHook
	purged []PurgedHook

	processed, duplicates, failed, purgedN atomic.Int64

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	purgeMu   sync.Mutex // one purge at a time
	done      chan struct{}
	closeOnce sync.Once
}

// New returns an Inbox and starts its background purger (unless
// PurgeInterval is negative). Close stops the purger.
func New(cfg Config, logger watermill.LoggerAdapter) (*Inbox, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	i := &Inbox{
		cfg:    cfg,
		store:  cfg.Store,
		logger: logger.With(watermill.LogFields{"component": "inbox", "consumer_group": cfg.ConsumerGroup, "handler": cfg.Handler}),
		dups:   hooks.Of[DuplicateHook](cfg.Hooks),
		purged: hooks.Of[PurgedHook](cfg.Hooks),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	if cfg.PurgeInterval > 0 {
		go i.purgeLoop()
	} else {
		close(i.done)
	}
	return i, nil
}

// Config returns the configuration in use, defaults applied.
func (i *Inbox) Config() Config { return i.cfg }

// Stats returns the counters.
func (i *Inbox) Stats() Stats {
	return Stats{Processed: i.processed.Load(), Duplicates: i.duplicates.Load(),
		Failed: i.failed.Load(), Purged: i.purgedN.Load()}
}

// Close stops the purger, cancelling a purge in progress, and waits for it.
// It does not close the store. Handlers may still run through the middleware
// after Close (close the router first). Close is idempotent.
func (i *Inbox) Close() error {
	i.closeOnce.Do(i.cancel)
	<-i.done
	return nil
}

type txKey struct{}

// Tx returns the SQL transaction the inbox opened for the message whose
// context is ctx (msg.Context() inside the handler), or nil when the store
// has none (Redis) or ctx is not a handler's. Write the handler's effects
// through it: they commit together with the inbox record, or not at all.
// Do not Commit or Rollback it; the middleware does.
func Tx(ctx context.Context) *sql.Tx {
	tx, _ := ctx.Value(txKey{}).(*sql.Tx)
	return tx
}

// ConsumerHandler wraps a handler that returns no messages, for
// Router.AddConsumerHandler or redelivery's AddConsumerHandler.
func (i *Inbox) ConsumerHandler(h message.NoPublishHandlerFunc) message.NoPublishHandlerFunc {
	wrapped := i.Middleware(func(msg *message.Message) ([]*message.Message, error) { return nil, h(msg) })
	return func(msg *message.Message) error {
		_, err := wrapped(msg)
		return err
	}
}

// Middleware wraps a handler: a message whose UUID this handler already
// processed is acknowledged without running it; otherwise the handler runs
// with the claim open (and, with a SQL store, its transaction in
// msg.Context(), see Tx), and the record is committed when it returns nil,
// aborted when it returns an error or panics (the panic goes on up).
//
// With middleware/redelivery, put the inbox inside: pass
// inbox.Middleware(h) (or ConsumerHandler) to redelivery's AddHandler, so a
// failed run leaves no record and its redelivery runs the handler again.
//
// One Inbox serves one handler: its records are keyed by Config.Handler, not
// by the router's handler name (redelivery registers a handler twice, for the
// topic and for its retry topic, and both must share the records). Do not add
// it with Router.AddMiddleware to a router of several handlers.
func (i *Inbox) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		key := inbox.Key{ConsumerGroup: i.cfg.ConsumerGroup, Handler: i.cfg.Handler, UUID: msg.UUID}
		ctx := msg.Context()
		entry, err := i.store.Begin(ctx, key, i.cfg.Retention)
		switch {
		case errors.Is(err, inbox.ErrDuplicate):
			i.duplicates.Add(1)
			for _, hk := range i.dups {
				hk.OnDuplicate(DuplicateParams{MessageUUID: msg.UUID, ConsumerGroup: key.ConsumerGroup, Handler: key.Handler})
			}
			return nil, nil
		case errors.Is(err, inbox.ErrInvalidKey):
			return nil, policy.Permanent(err)
		case err != nil:
			return nil, fmt.Errorf("inbox: begin: %w", err)
		}
		if tx := entry.Tx(); tx != nil {
			msg.SetContext(context.WithValue(ctx, txKey{}, tx))
		}
		finished := false
		defer func() {
			msg.SetContext(ctx)
			if !finished { // the handler panicked
				i.failed.Add(1)
				i.abort(entry, msg.UUID)
			}
		}()
		produced, herr := h(msg)
		finished = true
		if herr != nil {
			i.failed.Add(1)
			i.abort(entry, msg.UUID)
			return nil, herr
		}
		// The handler's context may be cancelled by now (router shutdown);
		// a commit must still be tried, or the work done is thrown away.
		if err := entry.Commit(context.WithoutCancel(ctx)); err != nil {
			return nil, fmt.Errorf("inbox: commit: %w", err)
		}
		i.processed.Add(1)
		return produced, nil
	}
}

func (i *Inbox) abort(e inbox.Entry, uuid string) {
	if err := e.Abort(context.WithoutCancel(context.Background())); err != nil {
		i.logger.Error("Could not abort an inbox claim; the store releases it by itself", err,
			watermill.LogFields{"message_uuid": uuid})
	}
}
