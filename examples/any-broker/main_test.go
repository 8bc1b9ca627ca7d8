package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	nc "github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// watermill-redisstream's Subscriber.Close does not wait for its
		// reader goroutine, which ends when its blocking read returns.
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream.(*Subscriber).read"))
}

// keptRunTest is the test that runs with Config.Keep, so that the cleanup
// checks see the objects a run creates under the names they expect.
const keptRunTest = "TestRun_on_Redis_streams_with_Keep_leaves_its_streams"

func runBroker(t *testing.T, cfg Config) {
	t.Helper()
	cfg.RunID = strings.ToLower(watermill.NewShortUUID()[:8])
	cfg.Keep = t.Name() == keptRunTest
	switch cfg.Broker {
	case "postgres", "mysql":
		dropSQL(t, cfg)
	case "rabbitmq":
		t.Cleanup(func() { deleteAMQP(t, cfg) })
	case "nats":
		t.Cleanup(func() { deleteNATS(t, cfg) })
	case "redis":
		t.Cleanup(func() { deleteRedis(t, cfg) })
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
	if deleted := strings.Contains(out.String(), "deleted the store table"); deleted == cfg.Keep {
		t.Errorf("Keep %v, cleanup line present %v:\n%s", cfg.Keep, deleted, out.String())
	}
	if cfg.Broker == "postgres" || cfg.Broker == "mysql" {
		dialect := sqlstore.Postgres
		if cfg.Broker == "mysql" {
			dialect = sqlstore.MySQL
		}
		db := sqlstoretest.Open(t, dialect)
		tables := []string{"anybroker_" + cfg.RunID}
		for _, rt := range runTopics(cfg.RunID) {
			tables = append(tables, "watermill_"+rt.topic, "watermill_offsets_"+rt.topic)
		}
		for _, table := range tables {
			if rows, err := db.Query("SELECT 1 FROM " + table + " WHERE 1 = 0"); err == nil {
				_ = rows.Close()
				t.Errorf("the run left table %s behind", table)
			}
		}
	}
}

// runTopic is a topic a run publishes to and the consumer group that reads it.
type runTopic struct{ topic, group string }

// runTopics returns the topics of a run, as Run names them: the events topic
// and the retry topic, both read by the handler's group, and the dead-letter
// topic, read by the group's "_dlq" subscriber.
func runTopics(runID string) []runTopic {
	group := "anybroker_" + runID
	return []runTopic{
		{group + "_events", group},
		{redelivery.DefaultRetryTopic(group, "handle"), group},
		{redelivery.DefaultDeadLetterTopic(group), group + "_dlq"},
	}
}

// dropSQL drops, when the test ends, the tables a run creates on a database
// server: the store's table, and watermill-sql's messages and offsets tables
// of each topic.
func dropSQL(t *testing.T, cfg Config) {
	t.Helper()
	dialect := sqlstore.Postgres
	if cfg.Broker == "mysql" {
		dialect = sqlstore.MySQL
	}
	db := sqlstoretest.Open(t, dialect)
	sqlstoretest.DropAtCleanup(t, db, "anybroker_"+cfg.RunID)
	for _, rt := range runTopics(cfg.RunID) {
		sqlstoretest.DropAtCleanup(t, db, "watermill_"+rt.topic)
		sqlstoretest.DropAtCleanup(t, db, "watermill_offsets_"+rt.topic)
	}
}

// deleteEach checks that the run deleted the named objects it created on the
// broker (Run cleans up unless Config.Keep), and deletes any it left behind.
// With Keep the run must have left every one of them, which proves the names
// are the ones the run uses.
func deleteEach(t *testing.T, kind string, names []string, exists func(string) (bool, error), remove func(string) error) {
	t.Helper()
	ranWell := !t.Failed()
	kept := t.Name() == keptRunTest
	for _, name := range names {
		found, err := exists(name)
		if err != nil {
			t.Errorf("cleanup: looking up %s %s: %v", kind, name, err)
			continue
		}
		if !found {
			if ranWell && kept {
				t.Errorf("cleanup: the run with Keep created no %s %s", kind, name)
			}
			continue
		}
		if ranWell && !kept {
			t.Errorf("the run left %s %s behind", kind, name)
		}
		if err := remove(name); err != nil {
			t.Errorf("cleanup: deleting %s %s: %v", kind, name, err)
			continue
		}
		if found, err := exists(name); err != nil || found {
			t.Errorf("cleanup: %s %s still exists after its deletion (lookup error %v)", kind, name, err)
		}
	}
}

// deleteAMQP deletes the fanout exchange of each topic and the durable queue
// of each topic and group (transport.go's amqp configuration).
func deleteAMQP(t *testing.T, cfg Config) {
	t.Helper()
	conn, err := amqp091.Dial(cfg.Addr)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	// A passive declaration of a missing object closes its channel with 404,
	// so each lookup and deletion gets a channel of its own.
	onChannel := func(f func(ch *amqp091.Channel) error) (bool, error) {
		ch, err := conn.Channel()
		if err != nil {
			return false, err
		}
		err = f(ch)
		var ae *amqp091.Error
		if errors.As(err, &ae) && ae.Code == amqp091.NotFound {
			return false, nil
		}
		_ = ch.Close()
		return err == nil, err
	}
	var queues, exchanges []string
	for _, rt := range runTopics(cfg.RunID) {
		queues = append(queues, amqp.GenerateQueueNameTopicNameWithSuffix(rt.group)(rt.topic))
		exchanges = append(exchanges, amqp.GenerateExchangeNameTopicName(rt.topic))
	}
	deleteEach(t, "queue", queues,
		func(name string) (bool, error) {
			return onChannel(func(ch *amqp091.Channel) error {
				_, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
				return err
			})
		},
		func(name string) error {
			_, err := onChannel(func(ch *amqp091.Channel) error {
				_, err := ch.QueueDelete(name, false, false, false)
				return err
			})
			return err
		})
	deleteEach(t, "exchange", exchanges,
		func(name string) (bool, error) {
			return onChannel(func(ch *amqp091.Channel) error {
				return ch.ExchangeDeclarePassive(name, "fanout", true, false, false, false, nil)
			})
		},
		func(name string) error {
			_, err := onChannel(func(ch *amqp091.Channel) error { return ch.ExchangeDelete(name, false, false) })
			return err
		})
}

// deleteNATS deletes the JetStream stream of each topic, named after it,
// with the durable consumers of the groups in it.
func deleteNATS(t *testing.T, cfg Config) {
	t.Helper()
	conn, err := nc.Connect(cfg.Addr)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	js, err := conn.JetStream()
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	var streams []string
	for _, rt := range runTopics(cfg.RunID) {
		streams = append(streams, rt.topic)
	}
	deleteEach(t, "stream", streams,
		func(name string) (bool, error) {
			_, err := js.StreamInfo(name)
			if errors.Is(err, nc.ErrStreamNotFound) {
				return false, nil
			}
			return err == nil, err
		},
		func(name string) error { return js.DeleteStream(name) })
}

// deleteRedis deletes the stream key of each topic, with the consumer groups
// on it.
func deleteRedis(t *testing.T, cfg Config) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: cfg.Addr})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys []string
	for _, rt := range runTopics(cfg.RunID) {
		keys = append(keys, rt.topic)
	}
	deleteEach(t, "stream", keys,
		func(key string) (bool, error) {
			n, err := client.Exists(ctx, key).Result()
			return n == 1, err
		},
		func(key string) error { return client.Del(ctx, key).Err() })
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

func TestRun_on_Redis_streams_with_Keep_leaves_its_streams(t *testing.T) {
	runBroker(t, Config{Broker: "redis", Addr: servicetest.Redis.Addr(t)})
}
