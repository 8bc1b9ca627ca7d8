package redelivery_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/redelivery/redeliverytest"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// externalHeadOfLine keeps the head-of-line test of real servers within the
// package's time budget; gochannel and SQLite run the full 10,000.
const externalHeadOfLine = 2000

// topicTracker remembers the topics a test used, so their server-side
// objects can be removed afterwards.
type topicTracker struct {
	mu     sync.Mutex
	topics map[string]bool
	groups map[string]bool
}

func (tt *topicTracker) add(topic string) {
	tt.mu.Lock()
	tt.topics[topic] = true
	tt.mu.Unlock()
}

func (tt *topicTracker) list() []string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	var out []string
	for t := range tt.topics {
		out = append(out, t)
	}
	return out
}

// trackedPerTest gives each test one tracker; cleanup runs at the end of the
// test with every topic (and consumer group) the test used.
func trackedPerTest(cleanup func(topics, groups []string)) func(t *testing.T) *topicTracker {
	return redeliverytest.PerTest(func(t *testing.T) *topicTracker {
		tt := &topicTracker{topics: map[string]bool{}, groups: map[string]bool{}}
		t.Cleanup(func() { cleanup(tt.list(), tt.groupList()) })
		return tt
	})
}

func (tt *topicTracker) addGroup(group string) {
	tt.mu.Lock()
	tt.groups[group] = true
	tt.mu.Unlock()
}

func (tt *topicTracker) groupList() []string {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	var out []string
	for g := range tt.groups {
		out = append(out, g)
	}
	return out
}

// track wraps a test's publisher and subscriber so the topics they use are
// recorded, and the subscriber is closed once.
func track(t *testing.T, tt *topicTracker, group string, pub message.Publisher, sub message.Subscriber) (message.Publisher, message.Subscriber) {
	tt.addGroup(group)
	return trackedPublisher{pub, tt}, closedOnce(t, trackedSubscriber{sub, tt})
}

type trackedPublisher struct {
	message.Publisher
	tt *topicTracker
}

func (p trackedPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.tt.add(topic)
	return p.Publisher.Publish(topic, msgs...)
}

type trackedSubscriber struct {
	message.Subscriber
	tt *topicTracker
}

func (s trackedSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.tt.add(topic)
	return s.Subscriber.Subscribe(ctx, topic)
}

// onceSubscriber closes the subscriber once, whoever asks first: the router
// when a consumer stops, or the test's cleanup for subscribers no router
// used. Some subscribers do not survive two Close calls.
type onceSubscriber struct {
	message.Subscriber
	once sync.Once
}

func (s *onceSubscriber) Close() error {
	var err error
	s.once.Do(func() { err = s.Subscriber.Close() })
	return err
}

// closedOnce wraps sub and closes it at the end of the test, after the
// t.Cleanup functions registered later (the consumers') ran.
func closedOnce(t *testing.T, sub message.Subscriber) message.Subscriber {
	o := &onceSubscriber{Subscriber: sub}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

// sqlBackend runs watermill-sql as the transport and sqlstore as the durable
// delay, in one database, dropping the test's tables at the end.
func sqlBackend(t *testing.T, dialect sqlstore.Dialect,
	schema wsql.SchemaAdapter, offsets wsql.OffsetsAdapter, quote func(string) string) redeliverytest.Backend {
	db := sqlstoretest.Open(t, dialect)
	drop := func(table string) { _, _ = db.Exec("DROP TABLE IF EXISTS " + quote(table)) }
	tracker := trackedPerTest(func(topics, _ []string) {
		for _, topic := range topics {
			drop("watermill_" + topic)
			drop("watermill_offsets_" + topic)
		}
	})
	return redeliverytest.Backend{
		NewPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
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
			t.Cleanup(func() { _ = pub.Close() })
			return track(t, tracker(t), group, pub, sub)
		},
		Configure: durableIn(func(t *testing.T) *sqlstore.Store {
			return sqlstoretest.NewStore(t, dialect, sqlstore.Config{DB: db, Table: sqlstoretest.UniqueName("rq_waiting")})
		}),
	}
}

func TestConformance_PostgreSQL_durable(t *testing.T) {
	quote := func(s string) string { return `"` + s + `"` }
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine},
		sqlBackend(t, sqlstore.Postgres, wsql.DefaultPostgreSQLSchema{}, wsql.DefaultPostgreSQLOffsetsAdapter{}, quote))
}

func TestConformance_MariaDB_durable(t *testing.T) {
	quote := func(s string) string { return "`" + s + "`" }
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine},
		sqlBackend(t, sqlstore.MySQL, wsql.DefaultMySQLSchema{}, wsql.DefaultMySQLOffsetsAdapter{}, quote))
}

// sqliteDurable parks waiting messages in SQLite for the broker backends.
var sqliteDurable = durableIn(sqliteStore)

func TestConformance_RabbitMQ_durable(t *testing.T) {
	uri := servicetest.AMQP.Addr(t)
	tracker := trackedPerTest(func(topics, groups []string) {
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
			for _, g := range groups {
				_, _ = ch.QueueDelete(amqp.GenerateQueueNameTopicNameWithSuffix(g)(topic), false, false, false)
			}
			_ = ch.ExchangeDelete(topic, false, false)
		}
	})
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine}, redeliverytest.Backend{
		NewPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			// One durable queue per topic and group: groups on one topic each
			// get every message.
			cfg := amqp.NewDurablePubSubConfig(uri, amqp.GenerateQueueNameTopicNameWithSuffix(group))
			pub, err := amqp.NewPublisher(cfg, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := amqp.NewSubscriber(cfg, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pub.Close() })
			return track(t, tracker(t), group, pub, sub)
		},
		Configure: sqliteDurable,
	})
}

func TestConformance_NATS_JetStream_durable(t *testing.T) {
	url := servicetest.NATS.Addr(t)
	tracker := trackedPerTest(func(topics, _ []string) {
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
	})
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine}, redeliverytest.Backend{
		NewPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			js := wnats.JetStreamConfig{
				AutoProvision:    true,
				SubscribeOptions: []nc.SubOpt{nc.DeliverAll(), nc.AckExplicit()},
				DurablePrefix:    group,
				// One durable consumer per group and topic.
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
			t.Cleanup(func() { _ = pub.Close() })
			return track(t, tracker(t), group, pub, sub)
		},
		Configure: sqliteDurable,
	})
}

func TestConformance_Redis_streams_durable(t *testing.T) {
	addr := servicetest.Redis.Addr(t)
	tracker := trackedPerTest(func(topics, _ []string) {
		client := redis.NewClient(&redis.Options{Addr: addr})
		defer client.Close()
		if len(topics) > 0 {
			_ = client.Del(context.Background(), topics...).Err()
		}
	})
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine}, redeliverytest.Backend{
		NewPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
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
			t.Cleanup(func() { _ = pub.Close(); _ = client.Close() })
			return track(t, tracker(t), group, pub, sub)
		},
		Configure: sqliteDurable,
	})
}
