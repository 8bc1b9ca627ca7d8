// Command postgresonly is the smallest program that uses reliamq the way a
// PostgreSQL deployment does: the RocketMQ publisher and subscriber, the
// publish stack async(fallback(retry(rocketmq))) over a PostgreSQL store, the
// relay, the redelivery middleware and the Prometheus metrics. It exists for
// its test, which checks that such a program links neither the SQLite driver
// nor the test-only packages (rocketmqtest, testing, goleak).
//
//	go run ./examples/internal/postgresonly --dsn 'postgres://root@127.0.0.1:5432/test?sslmode=disable' --rocketmq 127.0.0.1:9876
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

func main() {
	dsn := flag.String("dsn", os.Getenv("RELIAMQ_DSN"), "PostgreSQL DSN")
	ns := flag.String("rocketmq", "127.0.0.1:9876", "RocketMQ name server")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *dsn, *ns); err != nil {
		fmt.Fprintln(os.Stderr, "postgresonly:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dsn, ns string) error {
	logger := watermill.NewStdLogger(false, false)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.Postgres, AutoInitialize: true}, logger)
	if err != nil {
		return err
	}
	m, err := metrics.New(metrics.Config{Registerer: prometheus.NewRegistry()}, logger)
	if err != nil {
		return err
	}
	_ = m
	broker, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{ns}}, logger)
	if err != nil {
		return err
	}
	defer broker.Close()
	retried, err := retry.NewPublisher(broker, retry.Config{Policy: policy.Policy{MaxAttempts: 3}}, logger)
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
	defer pub.Close()
	relay, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: broker}, logger)
	if err != nil {
		return err
	}
	go func() { _ = relay.Run(ctx) }()

	sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: []string{ns}, ConsumerGroup: "postgresonly"}, logger)
	if err != nil {
		return err
	}
	rd, err := redelivery.New(redelivery.Config{ConsumerGroup: "postgresonly", Handler: "h",
		Scheduler: redelivery.NewDurable(redelivery.DurableConfig{Store: st}), Publisher: broker}, logger)
	if err != nil {
		return err
	}
	defer rd.Close()
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return err
	}
	if _, err := rd.AddConsumerHandler(router, "postgresonly", sub, func(*message.Message) error { return nil }); err != nil {
		return err
	}
	if err := pub.Publish("postgresonly", message.NewMessage(watermill.NewUUID(), []byte("hello"))); err != nil {
		return err
	}
	return router.Run(ctx)
}
