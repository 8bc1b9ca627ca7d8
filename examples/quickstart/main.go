// Command quickstart publishes three messages through reliamq's publish stack
// to an embedded RocketMQ broker, consumes them with RocketMQ's retry schedule,
// and shuts down in the order that loses nothing.
//
//	go get github.com/reliamq/reliamq@latest
//	go run .
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer) error {
	logger := watermill.NopLogger{} // watermill.NewStdLogger(false, false) to see what happens

	// An embedded RocketMQ name server and broker. With a real cluster, use
	// its name servers (host:9876) and drop these lines.
	b, err := rocketmqtest.New(rocketmqtest.Config{})
	if err != nil {
		return err
	}
	defer b.Close()
	nameServers := []string{b.NameServerAddr()}

	// The fallback store: SQLite in a temporary directory. For PostgreSQL or
	// MySQL, open the database with its driver and use sqlstore.Postgres or
	// sqlstore.MySQL.
	dir, err := os.MkdirTemp("", "reliamq-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(filepath.Join(dir, "reliamq.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, AutoInitialize: true}, logger)
	if err != nil {
		return err
	}

	// Publish side: async(fallback(retry(rocketmq))). A send that fails its
	// retries is stored; the relay resends stored rows through the broker
	// publisher itself (its own policy schedules the retries).
	broker, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: nameServers}, logger)
	if err != nil {
		return err
	}
	retried, err := retry.NewPublisher(broker, retry.Config{Policy: policy.Policy{MaxAttempts: 3,
		Backoff: policy.Exponential(100*time.Millisecond, 2, time.Second)}}, logger)
	if err != nil {
		return err
	}
	fb, err := fallback.NewPublisher(retried, fallback.Config{Store: st}, logger)
	if err != nil {
		return err
	}
	pub, err := async.NewPublisher(fb, async.Config{}, logger)
	if err != nil {
		return err
	}
	relay, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: broker}, logger)
	if err != nil {
		return err
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	defer stopRelay() // on the error returns below; the shutdown stops it in order
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()

	// Consume side: a router handler with RocketMQ's retry schedule (10s, 30s,
	// 1m ... 2h), the waiting messages kept in the store, then a dead-letter topic.
	sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: nameServers, ConsumerGroup: "quickstart"}, logger)
	if err != nil {
		return err
	}
	rd, err := redelivery.New(redelivery.Config{ConsumerGroup: "quickstart", Handler: "greet",
		Scheduler: redelivery.NewDurable(redelivery.DurableConfig{Store: st}), Publisher: broker}, logger)
	if err != nil {
		return err
	}
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return err
	}
	received := make(chan string, 3)
	_, err = rd.AddConsumerHandler(router, "greetings", sub, func(msg *message.Message) error {
		fmt.Fprintf(out, "received %s: %s\n", msg.UUID, msg.Payload)
		received <- msg.UUID
		return nil // an error here is retried on the schedule, with the same UUID
	})
	if err != nil {
		return err
	}
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()
	<-router.Running()

	for i := 1; i <= 3; i++ {
		msg := message.NewMessage(watermill.NewUUID(), fmt.Appendf(nil, "hello %d", i))
		if err := pub.Publish("greetings", msg); err != nil {
			return err
		}
		fmt.Fprintf(out, "published %s\n", msg.UUID)
	}
	for range 3 {
		select {
		case <-received:
		case <-time.After(time.Minute):
			return errors.New("messages not received within a minute")
		}
	}

	// Shutdown, in this order. The relay and the redelivery middleware publish
	// through broker, and closing pub closes fallback, retry and broker with it.
	// 1. The router: no more handlers run (it closes the subscriber).
	// 2. The redelivery middleware: its poller stops publishing due retries.
	// 3. The relay: it stops sending stored rows.
	// 4. pub: waits for queued sends (a failed one is stored for the relay's
	//    next run), then closes fallback, retry and broker.
	// 5. The store's database, then (deferred) the embedded broker.
	errs := []error{router.Close(), <-routerDone, rd.Close()}
	stopRelay()
	errs = append(errs, <-relayDone, pub.Close())
	fmt.Fprintln(out, "shut down")
	return errors.Join(errs...)
}
