// Package transporttest is the one table of Watermill transports reliamq's
// middleware tests run on: gochannel; watermill-sql on PostgreSQL and
// MariaDB (and SQLite, whose messages travel over gochannel because
// watermill-sql v3.1.0 has no SQLite schema); RabbitMQ (watermill-amqp);
// NATS JetStream (watermill-nats); Redis streams (watermill-redisstream);
// and, in rocketmq.go (built without -race, as the RocketMQ client has data
// races of its own), the embedded RocketMQ broker and the real 4.9.4 and
// 5.2.0 clusters through adapters/rocketmq.
//
// A constructor reaches its service through pkg/servicetest: the test is
// skipped when the service is unreachable, and fails when the CI
// environment variable is set. Everything a transport creates is closed or
// removed when the test that created it ends: publishers, subscribers,
// connections, and the server-side objects of the topics it used (tables,
// queues and exchanges, streams).
//
// Only tests import this package: it links adapters (adapters/sqlstore,
// adapters/rocketmq) that middleware code must not depend on.
package transporttest

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
	"github.com/reliamq/reliamq/middleware/redelivery/redeliverytest"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// Transport is one Watermill transport under test.
type Transport struct {
	// Name names the transport in subtests and logs.
	Name string
	// NewPubSub returns a publisher and a subscriber consuming as group.
	// A test may call it many times (one call per consumer, a restarted
	// consumer calls it again); consumer groups on one topic each receive
	// every message. Both are closed when the test ends, the subscriber
	// first; the subscriber may be closed earlier (by a router) and
	// survives a second Close. The server-side objects of every topic the
	// test published or subscribed to are removed after that.
	NewPubSub func(t *testing.T, group string) (message.Publisher, message.Subscriber)
	// DB is the database the messages are kept in (watermill-sql), or the
	// SQLite file of the SQLite transport; nil for the other transports.
	// Tests put their own tables (stores, inboxes) there.
	DB *sql.DB
	// Dialect is DB's dialect; empty when DB is nil.
	Dialect sqlstore.Dialect
	// SerialPublish is true when concurrent Publish calls can lose
	// messages, so a test must publish one call at a time: watermill-sql's
	// MySQL schema numbers messages with AUTO_INCREMENT and its subscriber
	// reads past an offset whose transaction has not committed yet, skipping
	// that message for good (the PostgreSQL schema orders by transaction ID
	// and waits for it).
	SerialPublish bool
}

// Case is a named constructor of the table.
type Case struct {
	Name string
	New  func(t *testing.T) Transport
}

// Watermill is every transport of the table that does not run the RocketMQ
// client, in the order the redelivery conformance suite runs them. See
// RocketMQ (rocketmq.go) for the others.
func Watermill() []Case {
	return []Case{
		{"gochannel", func(*testing.T) Transport { return GoChannel() }},
		{"sqlite", SQLite},
		{"postgres", func(t *testing.T) Transport { return SQL(t, sqlstore.Postgres) }},
		{"mariadb", func(t *testing.T) Transport { return SQL(t, sqlstore.MySQL) }},
		{"rabbitmq", RabbitMQ},
		{"nats-jetstream", NATSJetStream},
		{"redis-streams", RedisStreams},
	}
}

// ForEach runs fn as one subtest per case, named after it.
func ForEach(t *testing.T, cases []Case, fn func(t *testing.T, tr Transport)) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { fn(t, c.New(t)) })
	}
}

// GoChannel is an in-memory gochannel, one per test, shared by every
// NewPubSub call of that test and closed when it ends. Publish blocks until
// the subscribers acknowledged (BlockPublishUntilSubscriberAck), so a
// subscription is a serial queue as a broker's is. gochannel has no
// consumer groups: every subscriber receives every message, which is what
// two groups on one topic look like. A message published with no
// subscriber is dropped: subscribe first.
func GoChannel() Transport {
	return goChannel("gochannel")
}

func goChannel(name string) Transport {
	perTest := redeliverytest.PerTest(func(t *testing.T) *gochannel.GoChannel {
		ps := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
		t.Cleanup(func() { _ = ps.Close() })
		return ps
	})
	return Transport{Name: name, NewPubSub: func(t *testing.T, _ string) (message.Publisher, message.Subscriber) {
		ps := perTest(t)
		return ps, KeepOpen(ps)
	}}
}

// KeepOpen returns sub with a Close that does nothing: a router closing its
// subscriber leaves a shared gochannel open, so a restarted consumer can
// subscribe again. The owner closes sub itself.
func KeepOpen(sub message.Subscriber) message.Subscriber { return keepOpen{sub} }

type keepOpen struct{ message.Subscriber }

func (keepOpen) Close() error { return nil }

// SQLite is GoChannel with an SQLite file (closed when t ends) as DB:
// watermill-sql v3.1.0 has no SQLite schema, so the messages travel over
// gochannel and the tests keep their tables (waiting messages, inbox
// records) in the file.
func SQLite(t *testing.T) Transport {
	tr := goChannel("sqlite")
	tr.DB, tr.Dialect = sqlstoretest.Open(t, sqlstore.SQLite), sqlstore.SQLite
	return tr
}

// SQL is watermill-sql on a database of dialect (sqlstore.Postgres or
// sqlstore.MySQL), opened for t and closed when it ends; a test's topic
// tables (watermill_<topic>, watermill_offsets_<topic>) are dropped after
// it.
func SQL(t *testing.T, dialect sqlstore.Dialect) Transport {
	t.Helper()
	var (
		schema  wsql.SchemaAdapter
		offsets wsql.OffsetsAdapter
		quote   func(string) string
		name    string
	)
	switch dialect {
	case sqlstore.Postgres:
		schema, offsets, name = wsql.DefaultPostgreSQLSchema{}, wsql.DefaultPostgreSQLOffsetsAdapter{}, "postgres"
		quote = func(s string) string { return `"` + s + `"` }
	case sqlstore.MySQL:
		schema, offsets, name = wsql.DefaultMySQLSchema{}, wsql.DefaultMySQLOffsetsAdapter{}, "mariadb"
		quote = func(s string) string { return "`" + s + "`" }
	default:
		t.Fatalf("transporttest: watermill-sql has no schema for dialect %q", dialect)
	}
	db := sqlstoretest.Open(t, dialect)
	topics := trackTopics(func(topics, _ []string) {
		for _, topic := range topics {
			_, _ = db.Exec("DROP TABLE IF EXISTS " + quote("watermill_"+topic))
			_, _ = db.Exec("DROP TABLE IF EXISTS " + quote("watermill_offsets_"+topic))
		}
	})
	return Transport{Name: name, DB: db, Dialect: dialect, SerialPublish: dialect == sqlstore.MySQL,
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
			return topics.wrap(t, group, pub, sub, nil)
		}}
}

// RabbitMQ is watermill-amqp with one durable queue per topic and consumer
// group (amqp.NewDurablePubSubConfig); the test's queues and exchanges are
// deleted after it.
func RabbitMQ(t *testing.T) Transport {
	uri := servicetest.AMQP.Addr(t)
	topics := trackTopics(func(topics, groups []string) {
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
	return Transport{Name: "rabbitmq", NewPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		cfg := amqp.NewDurablePubSubConfig(uri, amqp.GenerateQueueNameTopicNameWithSuffix(group))
		pub, err := amqp.NewPublisher(cfg, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := amqp.NewSubscriber(cfg, watermill.NopLogger{})
		if err != nil {
			_ = pub.Close()
			t.Fatal(err)
		}
		return topics.wrap(t, group, pub, sub, nil)
	}}
}

// NATSJetStream is watermill-nats with JetStream: one stream per topic
// (auto-provisioned, deleted after the test) and one durable consumer per
// group and topic, delivering from the start of the stream.
func NATSJetStream(t *testing.T) Transport {
	if raceDetector {
		// watermill-nats v2.1.3 closes a subscription's output channel
		// while its message callback may still send on it (Subscriber.
		// Subscribe's closer against processMessage): the race detector
		// reports the library's race, not ours. The NATS cases run in the
		// build without -race (make test-unit).
		t.Skip("NATS JetStream transport: watermill-nats has a data race of its own; runs without -race")
	}
	url := servicetest.NATS.Addr(t)
	topics := trackTopics(func(topics, _ []string) {
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
	return Transport{Name: "nats-jetstream", NewPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
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
			_ = pub.Close()
			t.Fatal(err)
		}
		return topics.wrap(t, group, pub, sub, nil)
	}}
}

// RedisStreams is watermill-redisstream with one Redis consumer group per
// consumer group, reading from the start of the stream; the test's streams
// are deleted after it.
func RedisStreams(t *testing.T) Transport {
	addr := servicetest.Redis.Addr(t)
	topics := trackTopics(func(topics, _ []string) {
		if len(topics) == 0 {
			return
		}
		client := redis.NewClient(&redis.Options{Addr: addr})
		defer client.Close()
		_ = client.Del(context.Background(), topics...).Err()
	})
	return Transport{Name: "redis-streams", NewPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		client := redis.NewClient(&redis.Options{Addr: addr})
		pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: client}, watermill.NopLogger{})
		if err != nil {
			_ = client.Close()
			t.Fatal(err)
		}
		sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{
			Client: client, ConsumerGroup: group, OldestId: "0", BlockTime: 50 * time.Millisecond,
			DisableIndefiniteInitialBlock: true,
		}, watermill.NopLogger{})
		if err != nil {
			_ = pub.Close()
			_ = client.Close()
			t.Fatal(err)
		}
		return topics.wrap(t, group, pub, sub, client.Close)
	}}
}

// Closed wraps sub so that it is closed once, whoever asks first (a router
// when its consumer stops, or the end of the test), and closes it when t
// ends. Several subscribers (watermill-sql's) do not survive a second Close.
// Registered after the publisher's cleanup, it runs before it.
func Closed(t testing.TB, sub message.Subscriber) message.Subscriber {
	o := &onceSubscriber{Subscriber: sub}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

type onceSubscriber struct {
	message.Subscriber
	once sync.Once
	err  error
}

func (s *onceSubscriber) Close() error {
	s.once.Do(func() { s.err = s.Subscriber.Close() })
	return s.err
}

// tracker records, per test, the topics and consumer groups its publishers
// and subscribers used, and removes their server-side objects when the test
// ends, after every publisher and subscriber of the test was closed.
type tracker struct {
	perTest func(t *testing.T) *used
}

type used struct {
	mu     sync.Mutex
	topics map[string]bool
	groups map[string]bool
}

func trackTopics(remove func(topics, groups []string)) tracker {
	return tracker{perTest: redeliverytest.PerTest(func(t *testing.T) *used {
		u := &used{topics: map[string]bool{}, groups: map[string]bool{}}
		// Registered before any publisher or subscriber of the test, so it
		// runs after they were closed.
		t.Cleanup(func() { remove(u.list()) })
		return u
	})}
}

func (u *used) add(set map[string]bool, name string) {
	u.mu.Lock()
	set[name] = true
	u.mu.Unlock()
}

func (u *used) list() (topics, groups []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for topic := range u.topics {
		topics = append(topics, topic)
	}
	for g := range u.groups {
		groups = append(groups, g)
	}
	return topics, groups
}

// wrap records the topics pub and sub use for group, closes pub (then
// closeAlso, when set) at the end of the test, and sub once before them.
func (tr tracker) wrap(t *testing.T, group string, pub message.Publisher, sub message.Subscriber,
	closeAlso func() error) (message.Publisher, message.Subscriber) {
	u := tr.perTest(t)
	u.add(u.groups, group)
	t.Cleanup(func() {
		_ = pub.Close()
		if closeAlso != nil {
			_ = closeAlso()
		}
	})
	return trackedPublisher{pub, u}, Closed(t, trackedSubscriber{sub, u})
}

type trackedPublisher struct {
	message.Publisher
	u *used
}

func (p trackedPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.u.add(p.u.topics, topic)
	return p.Publisher.Publish(topic, msgs...)
}

type trackedSubscriber struct {
	message.Subscriber
	u *used
}

func (s trackedSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.u.add(s.u.topics, topic)
	return s.Subscriber.Subscribe(ctx, topic)
}
