// Command comment-service is the seed scenario of reliamq: a comment API
// that publishes a "comment published" event asynchronously through
// async -> fallback -> retry -> RocketMQ, and a consumer that counts comments
// under RocketMQ-style redelivery with a dead-letter topic.
//
// With no flags it needs nothing but Go: it starts an embedded RocketMQ
// broker (adapters/rocketmq/rocketmqtest) and a SQLite file in a temporary
// directory, and plays a scripted story through a broker outage and failing
// consumers, ending with a count by message UUID. It exits with status 0 only
// when no message was lost.
//
//	go run ./examples/comment-service          # the story (make demo)
//	go run ./examples/comment-service --help   # flags for a real setup
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/examples/internal/exampledb"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := ParseConfig(args, nil, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "comment-service:", err)
		return 2
	}
	var logger watermill.LoggerAdapter = watermill.NopLogger{}
	if cfg.Verbose {
		logger = watermill.NewStdLoggerWithOut(stderr, false, false)
	} else {
		// The RocketMQ client logs reconnect errors during the outage; the
		// story narrates those events itself.
		rocketmq.RouteClientLogs(nil, rocketmq.ClientLogOff)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if cfg.Serve {
		if err := serve(ctx, cfg, logger, stdout); err != nil {
			fmt.Fprintln(stderr, "comment-service:", err)
			return 1
		}
		return 0
	}
	sum, err := RunStory(ctx, StoryConfig{Out: stdout, DSN: cfg.DSN, Table: cfg.Table, SendPolicy: cfg.SendPolicy,
		PolicySource: cfg.PolicySource, DelayScale: cfg.DelayScale, Pause: cfg.Pause, Logger: logger})
	if err != nil {
		fmt.Fprintln(stderr, "comment-service:", err)
	}
	if err != nil || sum.Lost != 0 {
		return 1
	}
	return 0
}

// serve runs the comment API and the consumer until ctx ends.
func serve(ctx context.Context, cfg Config, logger watermill.LoggerAdapter, out io.Writer) error {
	ns := cfg.NameServers
	if len(ns) == 0 {
		b, err := rocketmqtest.New(rocketmqtest.Config{DelayScale: cfg.DelayScale})
		if err != nil {
			return err
		}
		defer b.Close()
		ns = []string{b.NameServerAddr()}
		fmt.Fprintf(out, "embedded RocketMQ broker at %s (delay levels scaled x%g)\n", b.NameServerAddr(), cfg.DelayScale)
	}
	db, err := exampledb.Open(cfg.DSN)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db.DB, Dialect: db.Dialect, Table: cfg.Table, AutoInitialize: true}, logger)
	if err != nil {
		return err
	}
	say := func(format string, args ...any) {
		fmt.Fprintf(out, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}
	ev := &Events{
		Stored: func(p fallback.StoredParams) { say("fallback: %s stored after failed send: %v", p.UUID, p.SendErr) },
		StoreFailed: func(p fallback.StoreFailedParams) {
			say("fallback: %s neither sent nor stored: %v / %v", p.UUID, p.SendErr, p.StoreErr)
		},
		RelaySent: func(p fallback.SentParams) { say("relay: %s resent after %s", p.UUID, p.Age.Round(time.Millisecond)) },
		RelayOutage: func(p fallback.OutageParams) {
			say("relay: broker down=%v", p.Down)
		},
		Consumed: func(msg *message.Message, c Comment, err error) {
			say("consumer: %s note %d reconsume %s err=%v", msg.UUID, c.NoteID, msg.Metadata.Get(metadata.ReconsumeTimes), err)
		},
		Scheduled: func(p redelivery.ScheduledParams) {
			say("redelivery: %s retry %d in %s", p.MessageUUID, p.Retry, p.Delay)
		},
		DLQReceived: func(msg *message.Message) {
			say("dlq: %s reason %s", msg.UUID, msg.Metadata.Get(metadata.DeadLetterReason))
		},
	}
	reg, err := newRegistry()
	if err != nil {
		return err
	}
	m, err := metrics.New(metrics.Config{Registerer: reg, Topics: []string{TopicCommentPublished}}, logger)
	if err != nil {
		return err
	}
	pub, err := NewPublishSide(PublishConfig{NameServers: ns, Store: st, SendPolicy: cfg.SendPolicy,
		RelayPollInterval: fallback.DefaultPollInterval, Events: ev, Metrics: m, Logger: logger})
	if err != nil {
		return err
	}
	pub.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	con, err := NewConsumeSide(ctx, ConsumeConfig{NameServers: ns, Policy: policy.RocketMQ(), Events: ev, Metrics: m, Logger: logger})
	if err != nil {
		_ = pub.Close()
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = con.Close()
		_ = pub.Close()
		return err
	}
	srv := &http.Server{Handler: pub, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(out, "database %s, table %s\n", db.Where, cfg.Table)
	fmt.Fprintf(out, "listening on http://%s  (POST /comments, GET /stats, GET /metrics); Ctrl-C to stop\n", ln.Addr())
	<-ctx.Done()
	fmt.Fprintln(out, "stopping: draining the async pool (up to 60s), then the consumer")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(srv.Shutdown(shutdownCtx), pub.Close(), con.Close())
}
