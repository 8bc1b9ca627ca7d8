package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/examples/internal/exampledb"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// watermill-redisstream's Subscriber.Close does not wait for its
		// reader goroutine, which ends when its blocking read returns.
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream.(*Subscriber).read"))
}

func runBroker(t *testing.T, cfg Config) {
	t.Helper()
	cfg.RunID = strings.ToLower(watermill.NewShortUUID()[:8])
	if cfg.Broker == "postgres" || cfg.Broker == "mysql" {
		t.Cleanup(func() { dropSQL(t, cfg) })
	}
	var out bytes.Buffer
	s, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if err := s.Check(); err != nil {
		t.Errorf("%v\n%s", err, out.String())
	}
	want := Summary{Published: 8, Delivered: 7, DeadLettered: 1, Stored: 3, Redelivered: 4}
	if s != want {
		t.Errorf("summary %+v, want %+v\n%s", s, want, out.String())
	}
	if !strings.Contains(out.String(), "reason max_attempts after 3 attempts") {
		t.Errorf("no dead letter line:\n%s", out.String())
	}
}

// dropSQL removes the tables a run created on a shared server.
func dropSQL(t *testing.T, cfg Config) {
	dsn := cfg.Addr
	if cfg.Broker == "mysql" {
		dsn = "mysql://" + dsn
	}
	db, err := exampledb.Open(dsn)
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer db.Close()
	group := "anybroker_" + cfg.RunID
	tables := []string{group}
	for _, topic := range []string{group + "_events", redelivery.DefaultRetryTopic(group, "handle"), redelivery.DefaultDeadLetterTopic(group)} {
		tables = append(tables, "watermill_"+topic, "watermill_offsets_"+topic)
	}
	for _, table := range tables {
		if _, err := db.Exec("DROP TABLE IF EXISTS " + table); err != nil {
			t.Logf("cleanup %s: %v", table, err)
		}
	}
}

func TestRun_on_gochannel_with_SQLite_loses_nothing(t *testing.T) {
	runBroker(t, Config{Broker: "gochannel"})
}

func TestRun_on_PostgreSQL_loses_nothing(t *testing.T) {
	runBroker(t, Config{Broker: "postgres", Addr: servicetest.Postgres.Addr(t)})
}

func TestRun_on_MariaDB_loses_nothing(t *testing.T) {
	runBroker(t, Config{Broker: "mysql", Addr: servicetest.MySQL.Addr(t)})
}

func TestRun_on_RabbitMQ_loses_nothing(t *testing.T) {
	runBroker(t, Config{Broker: "rabbitmq", Addr: servicetest.AMQP.Addr(t)})
}

func TestRun_on_NATS_JetStream_loses_nothing(t *testing.T) {
	runBroker(t, Config{Broker: "nats", Addr: servicetest.NATS.Addr(t)})
}

func TestRun_on_Redis_streams_loses_nothing(t *testing.T) {
	runBroker(t, Config{Broker: "redis", Addr: servicetest.Redis.Addr(t)})
}

func TestRun_rejects_an_unknown_broker(t *testing.T) {
	if _, err := Run(context.Background(), Config{Broker: "carrier-pigeon"}, &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "carrier-pigeon") {
		t.Errorf("err = %v, want one naming the broker", err)
	}
}
