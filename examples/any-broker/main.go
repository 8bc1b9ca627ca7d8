// Command any-broker runs the same reliamq stacks over any Watermill
// backend, to show that the guarantees do not depend on the broker:
//
//	publish:  async( fallback( retry( broker publisher ) ) ), relay: table -> broker
//	consume:  Router + redelivery (Durable: waiting messages in the SQL store) + dead-letter topic
//
//	go run ./examples/any-broker                      # gochannel, store in a temporary SQLite file
//	go run ./examples/any-broker --broker postgres    # watermill-sql on PostgreSQL, store in the same database
//	go run ./examples/any-broker --broker mysql       # watermill-sql on MySQL/MariaDB, store in the same database
//	go run ./examples/any-broker --broker rabbitmq    # store in SQLite unless --dsn says otherwise
//	go run ./examples/any-broker --broker nats        # NATS JetStream
//	go run ./examples/any-broker --broker redis       # Redis streams
//
// A real server cannot be switched off from here, so the outage is simulated
// by a publisher decorator that fails every send while it is on (the
// comment-service example takes a real, embedded RocketMQ broker down
// instead). Everything else is the real backend.
//
// The run prints a summary by message UUID and exits with status 0 when no
// message was lost and the poison message is in the dead-letter topic.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/examples/internal/exampledb"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// Config configures Run.
type Config struct {
	// Broker is one of Brokers. Default "gochannel".
	Broker string
	// Addr is the broker's address. Default: see defaultAddr.
	Addr string
	// DSN is the store's database (exampledb). Default: the broker's own
	// database for postgres and mysql, a temporary SQLite file otherwise.
	DSN string
	// RunID makes topic, group and table names unique on shared servers.
	// Default: a random short id.
	RunID string
	// Keep keeps what the run created (the store table, the broker's tables,
	// queues, exchanges and streams); by default Run deletes them at the end.
	Keep bool
}

// Summary counts messages by UUID.
type Summary struct {
	Published, Delivered, Duplicated, DeadLettered, Lost int
	// Stored is how many messages went through the fallback table.
	Stored int
	// Redelivered counts redeliveries of failed messages.
	Redelivered int
}

// ErrLost is returned by Check when a message was lost.
var ErrLost = errors.New("messages lost")

// Check reports a lost message or a missing dead letter.
func (s Summary) Check() error {
	if s.Lost != 0 {
		return fmt.Errorf("%w: %d", ErrLost, s.Lost)
	}
	if s.DeadLettered != 1 {
		return fmt.Errorf("%d dead-lettered messages, want 1", s.DeadLettered)
	}
	return nil
}

func main() {
	var cfg Config
	flag.StringVar(&cfg.Broker, "broker", "gochannel", "backend: "+strings.Join(Brokers, ", "))
	flag.StringVar(&cfg.Addr, "addr", "", "broker address (DSN, URL or host:port); default: the RELIAMQ_*_DSN/URI/URL/ADDR variable of the broker, or its 127.0.0.1 default")
	flag.StringVar(&cfg.DSN, "dsn", os.Getenv("RELIAMQ_DSN"), "store database: postgres://..., mysql://user:pass@host:3306/db, user@tcp(host:3306)/db, sqlite:/path; default: the broker's database for postgres/mysql, else temporary SQLite. [RELIAMQ_DSN]")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the store table and the broker's tables, queues and streams the run created (deleted at the end by default)")
	flag.Parse()
	s, err := Run(context.Background(), cfg, os.Stdout)
	if err == nil {
		err = s.Check()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "any-broker:", err)
		os.Exit(1)
	}
}

// outage is a publisher decorator standing in for a broker that is down.
type outage struct {
	message.Publisher
	on atomic.Bool
}

var errOutage = errors.New("simulated outage: connection refused")

func (o *outage) Publish(topic string, msgs ...*message.Message) error {
	if o.on.Load() {
		return errOutage
	}
	return o.Publisher.Publish(topic, msgs...)
}

// Run plays: normal traffic, an outage absorbed by the fallback table, the
// relay draining it, a flaky and a poison message on the consumer side, and
// the summary.
func Run(ctx context.Context, cfg Config, out io.Writer) (Summary, error) {
	if cfg.Broker == "" {
		cfg.Broker = "gochannel"
	}
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr(cfg.Broker)
	}
	if cfg.DSN == "" {
		switch cfg.Broker {
		case "postgres":
			cfg.DSN = cfg.Addr
		case "mysql":
			cfg.DSN = "mysql://" + cfg.Addr
		}
	}
	if cfg.RunID == "" {
		cfg.RunID = strings.ToLower(watermill.NewShortUUID()[:8])
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	logger := watermill.NopLogger{}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}

	var (
		topic   = "anybroker_" + cfg.RunID + "_events"
		group   = "anybroker_" + cfg.RunID
		table   = "anybroker_" + cfg.RunID
		led     = map[string]int{} // successful handlings per UUID
		dead    = map[string]bool{}
		sent    []string
		settled = make(chan string, 64)
		stored  atomic.Int64
	)

	tr, err := newTransport(ctx, cfg.Broker, cfg.Addr, logger)
	if err != nil {
		return Summary{}, err
	}
	defer tr.Close()
	db, err := exampledb.Open(cfg.DSN)
	if err != nil {
		return Summary{}, err
	}
	defer db.Close()
	if !cfg.Keep {
		// Runs after everything below has stopped (defers run last first),
		// and before the database and the transport close.
		defer func() {
			uses := []topicUse{{topic, []string{group}}, {redelivery.DefaultRetryTopic(group, "handle"), []string{group}},
				{redelivery.DefaultDeadLetterTopic(group), []string{group + "_dlq"}}}
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var errs []error
			if tr.remove != nil {
				errs = append(errs, tr.remove(cctx, uses))
			}
			_, err := db.ExecContext(cctx, "DROP TABLE IF EXISTS "+table)
			if err := errors.Join(append(errs, err)...); err != nil {
				say("cleanup: %v", err)
				return
			}
			say("deleted the store table and what the run created on %s (--keep keeps them)", cfg.Broker)
		}()
	}
	store, err := sqlstore.New(sqlstore.Config{DB: db.DB, Dialect: db.Dialect, Table: table, AutoInitialize: true}, logger)
	if err != nil {
		return Summary{}, err
	}
	say("broker %s, store %s (table %s)", cfg.Broker, db.Where, table)

	// Publish side.
	down := &outage{Publisher: tr.publisher}
	sender, err := retry.NewPublisher(down, retry.Config{Policy: policy.Policy{MaxAttempts: 3,
		Backoff: policy.Exponential(50*time.Millisecond, 2, time.Second)}}, logger)
	if err != nil {
		return Summary{}, err
	}
	fb, err := fallback.NewPublisher(sender, fallback.Config{Store: store, Hooks: []any{storedHook(func(p fallback.StoredParams) {
		stored.Add(1)
		say("  fallback  %s stored: %v", p.UUID[:8], p.SendErr)
	})}}, logger)
	if err != nil {
		return Summary{}, err
	}
	pub, err := async.NewPublisher(fb, async.Config{}, logger)
	if err != nil {
		return Summary{}, err
	}
	relay, err := fallback.NewRelay(fallback.RelayConfig{Store: store, Publisher: down, PollInterval: 100 * time.Millisecond,
		Policy: policy.Policy{Backoff: policy.Exponential(100*time.Millisecond, 2, time.Second)}}, logger)
	if err != nil {
		_ = pub.Close()
		return Summary{}, err
	}
	relayCtx, stopRelay := context.WithCancel(context.Background())
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	pubClosed := false
	closePub := func() error {
		if pubClosed {
			return nil
		}
		pubClosed = true
		stopRelay()
		return errors.Join(<-relayDone, pub.Close())
	}
	defer closePub()

	// Consume side.
	sub, err := tr.subscribe(group)
	if err != nil {
		return Summary{}, err
	}
	dlqSub, err := tr.subscribe(group + "_dlq")
	if err != nil {
		return Summary{}, err
	}
	rd, err := redelivery.New(redelivery.Config{
		ConsumerGroup: group, Handler: "handle",
		Policy:    policy.Policy{MaxAttempts: 3, Backoff: policy.Table(100*time.Millisecond, 200*time.Millisecond)},
		Scheduler: redelivery.NewDurable(redelivery.DurableConfig{Store: store, PollInterval: 50 * time.Millisecond}),
		Publisher: tr.publisher,
		Hooks: []any{redeliveredHook(func(p redelivery.RedeliveredParams) {
			if p.Err != nil {
				say("  redeliver %s retry %d: publish failed, will try again: %v", p.MessageUUID[:8], p.Retry, p.Err)
			}
		})},
	}, logger)
	if err != nil {
		return Summary{}, err
	}
	defer rd.Close()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, logger)
	if err != nil {
		return Summary{}, err
	}
	_, err = rd.AddConsumerHandler(router, topic, sub, func(msg *message.Message) error {
		var ev struct{ Kind string }
		if err := json.Unmarshal(msg.Payload, &ev); err != nil {
			return policy.Permanent(err)
		}
		body, reconsume := ev.Kind, msg.Metadata.Get(metadata.ReconsumeTimes)
		if (body == "flaky" && reconsume != "2") || body == "poison" {
			say("  consumer  %-8s %s failed at reconsume %s", body, msg.UUID[:8], reconsume)
			return errors.New(body + " handler error")
		}
		mu.Lock()
		led[msg.UUID]++
		mu.Unlock()
		say("  consumer  %-8s %s handled at reconsume %s", body, msg.UUID[:8], reconsume)
		settled <- msg.UUID
		return nil
	})
	if err != nil {
		return Summary{}, err
	}
	router.AddConsumerHandler("dlq", rd.Config().DeadLetterTopic, dlqSub, func(msg *message.Message) error {
		mu.Lock()
		dead[msg.UUID] = true
		mu.Unlock()
		say("  dlq       %s reason %s after %s attempts", msg.UUID[:8], msg.Metadata.Get(metadata.DeadLetterReason),
			msg.Metadata.Get(metadata.Attempts))
		settled <- msg.UUID
		return nil
	})
	runDone := make(chan error, 1)
	go func() { runDone <- router.Run(context.Background()) }()
	routerClosed := false
	closeRouter := func() {
		if !routerClosed {
			routerClosed = true
			_ = router.Close()
			<-runDone
		}
	}
	defer closeRouter()
	select {
	case <-router.Running():
	case err := <-runDone:
		return Summary{}, err
	}

	publish := func(body string) error {
		// JSON: watermill-sql's default PostgreSQL schema stores payloads as JSON.
		msg := message.NewMessage(watermill.NewUUID(), fmt.Appendf(nil, `{"kind":%q}`, body))
		sent = append(sent, msg.UUID)
		return pub.Publish(topic, msg)
	}
	waitSettled := func(n int) error {
		for range n {
			select {
			case <-settled:
			case <-ctx.Done():
				return fmt.Errorf("waiting for messages: %w", ctx.Err())
			}
		}
		return nil
	}
	backlog := func() int64 {
		s, err := store.Stats(ctx, "")
		if err != nil {
			return -1
		}
		return s.Backlog
	}

	err = func() error {
		say("1. normal traffic")
		for range 3 {
			if err := publish("normal"); err != nil {
				return err
			}
		}
		if err := waitSettled(3); err != nil {
			return err
		}
		say("2. outage: every send fails")
		down.on.Store(true)
		for range 3 {
			if err := publish("outage"); err != nil {
				return err
			}
		}
		for stored.Load() < 3 {
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		say("  fallback  %d messages stored, %d rows in %s", stored.Load(), backlog(), table)
		say("3. broker back: the relay drains the table")
		down.on.Store(false)
		if err := waitSettled(3); err != nil {
			return err
		}
		for backlog() != 0 {
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		say("  fallback  table empty")
		say("4. consumer failures: redelivered from the store, then the dead-letter topic")
		if err := publish("flaky"); err != nil {
			return err
		}
		if err := publish("poison"); err != nil {
			return err
		}
		return waitSettled(2)
	}()
	// Consumer side first: the router stops handling, then Close waits for
	// the redelivery poller's publish in flight, which can return after the
	// handler already saw the message. Only then the publish side, whose
	// publisher the poller shares: closed earlier, it would fail that
	// publish although the message got through. The counters are final.
	closeRouter()
	errClose := rd.Close()
	errClose = errors.Join(errClose, closePub())
	st := rd.Stats()
	mu.Lock()
	s := Summary{Stored: int(stored.Load()), Redelivered: int(st.Redelivered)}
	for _, id := range sent {
		s.Published++
		switch n := led[id]; {
		case n > 0:
			s.Delivered++
			s.Duplicated += n - 1
		case dead[id]:
			s.DeadLettered++
		default:
			s.Lost++
		}
	}
	mu.Unlock()
	say("5. summary by UUID on %s: published %d, delivered %d, duplicated %d, dead-lettered %d, lost %d (stored %d, redelivered %d)",
		cfg.Broker, s.Published, s.Delivered, s.Duplicated, s.DeadLettered, s.Lost, s.Stored, s.Redelivered)
	return s, errors.Join(err, errClose)
}

// redeliveredHook adapts a func to redelivery.RedeliveredHook.
type redeliveredHook func(redelivery.RedeliveredParams)

func (h redeliveredHook) OnRedelivered(p redelivery.RedeliveredParams) { h(p) }

// storedHook adapts a func to fallback.StoredHook.
type storedHook func(fallback.StoredParams)

func (h storedHook) OnFallbackStored(p fallback.StoredParams) { h(p) }
