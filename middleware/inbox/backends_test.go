package inbox_test

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	nc "github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// The backends of the redelivery conformance suite
// (middleware/redelivery/redeliverytest), each run with the SQL inbox (in
// the transport's database for the SQL transports, PostgreSQL otherwise)
// and with the Redis inbox.

const scenarioMessages = 20

// onceSubscriber closes the subscriber once, whoever asks first: the router
// when the consumer stops, or the test's cleanup. Several subscribers
// (watermill-sql's) do not survive a second Close.
type onceSubscriber struct {
	message.Subscriber
	once sync.Once
}

func (s *onceSubscriber) Close() error {
	var err error
	s.once.Do(func() { err = s.Subscriber.Close() })
	return err
}

func closedOnce(sub message.Subscriber) *onceSubscriber { return &onceSubscriber{Subscriber: sub} }

// sharedGoChannel keeps a gochannel open when the router closes its
// subscriber.
type sharedGoChannel struct{ *gochannel.GoChannel }

func (sharedGoChannel) Close() error { return nil }

func goChannelTransport(t *testing.T, name string, configure func(t *testing.T, cfg *redelivery.Config)) transport {
	ps := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = ps.Close() })
	return transport{name: name, timeout: time.Minute,
		newPubSub: func(*testing.T, string) (message.Publisher, message.Subscriber) { return ps, sharedGoChannel{ps} },
		configure: configure}
}

func inMemory(_ *testing.T, cfg *redelivery.Config) {
	cfg.Scheduler = redelivery.NewInMemory(redelivery.InMemoryConfig{})
}

// durableIn parks waiting messages in a store table of db.
func durableIn(db func(t *testing.T) (*sql.DB, sqlstore.Dialect)) func(t *testing.T, cfg *redelivery.Config) {
	return func(t *testing.T, cfg *redelivery.Config) {
		d, dialect := db(t)
		cfg.Scheduler = redelivery.NewDurable(redelivery.DurableConfig{
			Store:        sqlstoretest.NewStore(t, dialect, sqlstore.Config{DB: d}),
			PollInterval: 20 * time.Millisecond,
		})
	}
}

func sqliteFile(t *testing.T) (*sql.DB, sqlstore.Dialect) {
	return sqlstoretest.Open(t, sqlstore.SQLite), sqlstore.SQLite
}

func sqlTransport(t *testing.T, name string, db *sql.DB, d sqlstore.Dialect) transport {
	var schema wsql.SchemaAdapter
	var offsets wsql.OffsetsAdapter
	quote := func(s string) string { return `"` + s + `"` }
	if d == sqlstore.Postgres {
		schema, offsets = wsql.DefaultPostgreSQLSchema{}, wsql.DefaultPostgreSQLOffsetsAdapter{}
	} else {
		schema, offsets = wsql.DefaultMySQLSchema{}, wsql.DefaultMySQLOffsetsAdapter{}
		quote = func(s string) string { return "`" + s + "`" }
	}
	return transport{name: name, timeout: time.Minute,
		newPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			pub, err := wsql.NewPublisher(db, wsql.PublisherConfig{SchemaAdapter: schema, AutoInitializeSchema: true}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := wsql.NewSubscriber(db, wsql.SubscriberConfig{
				ConsumerGroup: group, SchemaAdapter: schema, OffsetsAdapter: offsets, InitializeSchema: true,
				PollInterval: 10 * time.Millisecond, ResendInterval: 10 * time.Millisecond, RetryInterval: 10 * time.Millisecond,
			}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			once := closedOnce(sub)
			t.Cleanup(func() { _ = pub.Close(); _ = once.Close() })
			return pub, once
		},
		configure: durableIn(func(*testing.T) (*sql.DB, sqlstore.Dialect) { return db, d }),
		cleanup: func(topics []string, _ string) {
			for _, topic := range topics {
				_, _ = db.Exec("DROP TABLE IF EXISTS " + quote("watermill_"+topic))
				_, _ = db.Exec("DROP TABLE IF EXISTS " + quote("watermill_offsets_"+topic))
			}
		},
	}
}

func rabbitMQTransport(t *testing.T) transport {
	uri := servicetest.AMQP.Addr(t)
	return transport{name: "rabbitmq", timeout: time.Minute,
		newPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			cfg := amqp.NewDurablePubSubConfig(uri, amqp.GenerateQueueNameTopicNameWithSuffix(group))
			pub, err := amqp.NewPublisher(cfg, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := amqp.NewSubscriber(cfg, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			once := closedOnce(sub)
			t.Cleanup(func() { _ = pub.Close(); _ = once.Close() })
			return pub, once
		},
		configure: durableIn(sqliteFile),
		cleanup: func(topics []string, group string) {
			conn, err := amqp091.Dial(uri)
			if err != nil {
				return
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				return
			}
			for _, topic := range topics {
				_, _ = ch.QueueDelete(amqp.GenerateQueueNameTopicNameWithSuffix(group)(topic), false, false, false)
				_ = ch.ExchangeDelete(topic, false, false)
			}
		},
	}
}

func natsTransport(t *testing.T) transport {
	url := servicetest.NATS.Addr(t)
	return transport{name: "nats-jetstream", timeout: time.Minute,
		newPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			js := wnats.JetStreamConfig{
				AutoProvision:     true,
				SubscribeOptions:  []nc.SubOpt{nc.DeliverAll(), nc.AckExplicit()},
				DurablePrefix:     group,
				DurableCalculator: func(prefix, topic string) string { return prefix + "_" + topic },
			}
			pub, err := wnats.NewPublisher(wnats.PublisherConfig{URL: url, Marshaler: &wnats.NATSMarshaler{}, JetStream: js}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := wnats.NewSubscriber(wnats.SubscriberConfig{
				URL: url, QueueGroupPrefix: group, SubscribersCount: 1, AckWaitTimeout: 30 * time.Second,
				CloseTimeout: 10 * time.Second, Unmarshaler: &wnats.NATSMarshaler{}, JetStream: js,
			}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			once := closedOnce(sub)
			t.Cleanup(func() { _ = pub.Close(); _ = once.Close() })
			return pub, once
		},
		configure: durableIn(sqliteFile),
		cleanup: func(topics []string, _ string) {
			conn, err := nc.Connect(url)
			if err != nil {
				return
			}
			defer conn.Close()
			if js, err := conn.JetStream(); err == nil {
				for _, topic := range topics {
					_ = js.DeleteStream(topic)
				}
			}
		},
	}
}

func redisStreamsTransport(t *testing.T) transport {
	addr := servicetest.Redis.Addr(t)
	return transport{name: "redis-streams", timeout: time.Minute,
		newPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			client := redis.NewClient(&redis.Options{Addr: addr})
			pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: client}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
				Client: client, ConsumerGroup: group, OldestId: "0", BlockTime: 50 * time.Millisecond,
				DisableIndefiniteInitialBlock: true,
			}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			once := closedOnce(sub)
			t.Cleanup(func() { _ = once.Close(); _ = pub.Close(); _ = client.Close() })
			return pub, once
		},
		configure: durableIn(sqliteFile),
		cleanup: func(topics []string, _ string) {
			client := redis.NewClient(&redis.Options{Addr: addr})
			defer client.Close()
			_ = client.Del(context.Background(), topics...).Err()
		},
	}
}

// backendCase builds a transport and the SQL inbox store that goes with it.
type backendCase struct {
	name  string
	build func(t *testing.T) (transport, store)
}

func postgresInbox(t *testing.T) store {
	return newSQLStore(t, sqlstore.Postgres, sqlstoretest.Open(t, sqlstore.Postgres), nil)
}

var backendCases = []backendCase{
	{"gochannel", func(t *testing.T) (transport, store) {
		return goChannelTransport(t, "gochannel", inMemory), postgresInbox(t)
	}},
	{"sqlite", func(t *testing.T) (transport, store) {
		// Messages over gochannel (watermill-sql has no SQLite schema); the
		// waiting ones, the inbox records and the effects in one SQLite file.
		db := sqlstoretest.Open(t, sqlstore.SQLite)
		tr := goChannelTransport(t, "sqlite", durableIn(func(*testing.T) (*sql.DB, sqlstore.Dialect) { return db, sqlstore.SQLite }))
		return tr, newSQLStore(t, sqlstore.SQLite, db, nil)
	}},
	{"postgres", func(t *testing.T) (transport, store) {
		db := sqlstoretest.Open(t, sqlstore.Postgres)
		return sqlTransport(t, "postgres", db, sqlstore.Postgres), newSQLStore(t, sqlstore.Postgres, db, nil)
	}},
	{"mariadb", func(t *testing.T) (transport, store) {
		db := sqlstoretest.Open(t, sqlstore.MySQL)
		return sqlTransport(t, "mariadb", db, sqlstore.MySQL), newSQLStore(t, sqlstore.MySQL, db, nil)
	}},
	{"rabbitmq", func(t *testing.T) (transport, store) { return rabbitMQTransport(t), postgresInbox(t) }},
	{"nats-jetstream", func(t *testing.T) (transport, store) { return natsTransport(t), postgresInbox(t) }},
	{"redis-streams", func(t *testing.T) (transport, store) { return redisStreamsTransport(t), postgresInbox(t) }},
}

func TestInbox_runs_each_UUID_once_on_every_backend_with_duplicates_retries_and_a_replay(t *testing.T) {
	for _, bc := range backendCases {
		t.Run(bc.name, func(t *testing.T) {
			t.Run("sql-inbox", func(t *testing.T) {
				tr, st := bc.build(t)
				runDuplicateScenario(t, tr, st, scenarioMessages)
			})
			t.Run("redis-inbox", func(t *testing.T) {
				tr, _ := bc.build(t)
				runDuplicateScenario(t, tr, newRedisStore(t, redisinboxConfig()), scenarioMessages)
			})
		})
	}
}
