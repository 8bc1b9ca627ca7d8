package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill-redisstream/pkg/redisstream"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	_ "github.com/go-sql-driver/mysql" // "mysql" driver
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver
	nc "github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
)

// topicUse is a topic a run used and the consumer groups that read it.
type topicUse struct {
	topic  string
	groups []string
}

// Brokers lists the values of --broker.
var Brokers = []string{"gochannel", "postgres", "mysql", "rabbitmq", "nats", "redis"}

// defaultAddr is each broker's address when --addr is empty: the variable
// reliamq's tests read, or the local default.
func defaultAddr(broker string) string {
	env, def := "", ""
	switch broker {
	case "postgres":
		env, def = "RELIAMQ_POSTGRES_DSN", "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	case "mysql":
		env, def = "RELIAMQ_MYSQL_DSN", "root@tcp(127.0.0.1:3306)/test?parseTime=true"
	case "rabbitmq":
		env, def = "RELIAMQ_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"
	case "nats":
		env, def = "RELIAMQ_NATS_URL", "nats://127.0.0.1:4222"
	case "redis":
		env, def = "RELIAMQ_REDIS_ADDR", "127.0.0.1:6379"
	}
	if v := os.Getenv(env); env != "" && v != "" {
		return v
	}
	return def
}

// transport builds publishers and subscribers of one broker. Subscribers
// take a consumer group: every group gets every message of a topic, the
// members of a group share them.
type transport struct {
	name      string
	publisher message.Publisher
	subscribe func(group string) (message.Subscriber, error)
	// remove deletes what the run created on the broker for these topics
	// (tables, queues and exchanges, streams); nil when nothing outlives it.
	remove  func(ctx context.Context, uses []topicUse) error
	closers []func() error
	mu      sync.Mutex
}

func (t *transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.closers) - 1; i >= 0; i-- {
		_ = t.closers[i]()
	}
	return nil
}

func (t *transport) onClose(f func() error) {
	t.mu.Lock()
	t.closers = append(t.closers, f)
	t.mu.Unlock()
}

func newTransport(ctx context.Context, broker, addr string, logger watermill.LoggerAdapter) (*transport, error) {
	t := &transport{name: broker}
	switch broker {
	case "gochannel":
		// No groups in gochannel: every subscriber gets every message, which is
		// what one group per topic looks like. Persistent, so a subscriber that
		// starts late still sees earlier messages.
		ps := gochannel.NewGoChannel(gochannel.Config{Persistent: true, BlockPublishUntilSubscriberAck: true}, logger)
		t.publisher = ps
		t.subscribe = func(string) (message.Subscriber, error) { return noClose{ps}, nil }
		t.onClose(ps.Close)
	case "postgres", "mysql":
		driver, schema, offsets := "pgx", wsql.SchemaAdapter(wsql.DefaultPostgreSQLSchema{}), wsql.OffsetsAdapter(wsql.DefaultPostgreSQLOffsetsAdapter{})
		if broker == "mysql" {
			driver, schema, offsets = "mysql", wsql.DefaultMySQLSchema{}, wsql.DefaultMySQLOffsetsAdapter{}
		}
		db, err := sql.Open(driver, addr)
		if err != nil {
			return nil, err
		}
		if err := db.PingContext(ctx); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("%s: %w", broker, err)
		}
		t.onClose(db.Close)
		pub, err := wsql.NewPublisher(db, wsql.PublisherConfig{SchemaAdapter: schema, AutoInitializeSchema: true}, logger)
		if err != nil {
			return nil, err
		}
		t.publisher = pub
		t.remove = func(ctx context.Context, uses []topicUse) error {
			var errs []error
			for _, u := range uses {
				for _, table := range []string{"watermill_" + u.topic, "watermill_offsets_" + u.topic} {
					if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
						errs = append(errs, err)
					}
				}
			}
			return errors.Join(errs...)
		}
		t.subscribe = func(group string) (message.Subscriber, error) {
			return wsql.NewSubscriber(db, wsql.SubscriberConfig{ConsumerGroup: group, SchemaAdapter: schema,
				OffsetsAdapter: offsets, InitializeSchema: true, PollInterval: 20 * time.Millisecond,
				ResendInterval: 20 * time.Millisecond, RetryInterval: 20 * time.Millisecond}, logger)
		}
	case "rabbitmq":
		pubCfg := amqp.NewDurablePubSubConfig(addr, amqp.GenerateQueueNameTopicNameWithSuffix("publisher"))
		pub, err := amqp.NewPublisher(pubCfg, logger)
		if err != nil {
			return nil, err
		}
		t.publisher = pub
		t.remove = func(_ context.Context, uses []topicUse) error { return removeAMQP(addr, uses) }
		t.subscribe = func(group string) (message.Subscriber, error) {
			// One durable queue per topic and group (fanout exchange per topic).
			return amqp.NewSubscriber(amqp.NewDurablePubSubConfig(addr, amqp.GenerateQueueNameTopicNameWithSuffix(group)), logger)
		}
	case "nats":
		js := func(group string) wnats.JetStreamConfig {
			return wnats.JetStreamConfig{AutoProvision: true, DurablePrefix: group,
				SubscribeOptions:  []nc.SubOpt{nc.DeliverAll(), nc.AckExplicit()},
				DurableCalculator: func(prefix, topic string) string { return prefix + "_" + topic }}
		}
		pub, err := wnats.NewPublisher(wnats.PublisherConfig{URL: addr, Marshaler: &wnats.NATSMarshaler{}, JetStream: js("publisher")}, logger)
		if err != nil {
			return nil, err
		}
		t.publisher = pub
		t.remove = func(_ context.Context, uses []topicUse) error {
			conn, err := nc.Connect(addr)
			if err != nil {
				return err
			}
			defer conn.Close()
			js, err := conn.JetStream()
			if err != nil {
				return err
			}
			var errs []error
			for _, u := range uses {
				// The stream is named after the topic; its durable consumers go with it.
				if err := js.DeleteStream(u.topic); err != nil && !errors.Is(err, nc.ErrStreamNotFound) {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		}
		t.subscribe = func(group string) (message.Subscriber, error) {
			return wnats.NewSubscriber(wnats.SubscriberConfig{URL: addr, QueueGroupPrefix: group, SubscribersCount: 1,
				AckWaitTimeout: 30 * time.Second, CloseTimeout: 10 * time.Second, Unmarshaler: &wnats.NATSMarshaler{},
				JetStream: js(group)}, logger)
		}
	case "redis":
		// watermill-redisstream publishers and subscribers close their client
		// when they close, so each gets its own: with a shared one, the router
		// closing its subscribers would cut off a publish still in flight (the
		// redelivery poller's), which then reports a failure for a message
		// that did get through.
		newClient := func() *redis.Client { return redis.NewClient(&redis.Options{Addr: addr}) }
		client := newClient()
		if err := client.Ping(ctx).Err(); err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("redis: %w", err)
		}
		pub, err := redisstream.NewPublisher(redisstream.PublisherConfig{Client: client}, logger)
		if err != nil {
			_ = client.Close()
			return nil, err
		}
		t.onClose(pub.Close)
		t.publisher = pub
		t.remove = func(ctx context.Context, uses []topicUse) error {
			c := newClient()
			defer c.Close()
			keys := make([]string, len(uses))
			for i, u := range uses {
				keys[i] = u.topic // the stream key, with its consumer groups
			}
			return c.Del(ctx, keys...).Err()
		}
		t.subscribe = func(group string) (message.Subscriber, error) {
			client := newClient()
			sub, err := redisstream.NewSubscriber(redisstream.SubscriberConfig{Client: client, ConsumerGroup: group,
				OldestId: "0", BlockTime: 50 * time.Millisecond, DisableIndefiniteInitialBlock: true}, logger)
			if err != nil {
				_ = client.Close()
				return nil, err
			}
			return sub, nil
		}
	default:
		return nil, fmt.Errorf("unknown broker %q; one of %v", broker, Brokers)
	}
	return t, nil
}

// removeAMQP deletes the durable queue of each topic and group and the fanout
// exchange of each topic. Each deletion gets a channel of its own: an error
// closes the channel.
func removeAMQP(addr string, uses []topicUse) error {
	conn, err := amqp091.Dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	onChannel := func(f func(ch *amqp091.Channel) error) error {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		err = f(ch)
		var ae *amqp091.Error
		if errors.As(err, &ae) && ae.Code == amqp091.NotFound {
			return nil
		}
		_ = ch.Close()
		return err
	}
	var errs []error
	for _, u := range uses {
		for _, g := range u.groups {
			name := amqp.GenerateQueueNameTopicNameWithSuffix(g)(u.topic)
			errs = append(errs, onChannel(func(ch *amqp091.Channel) error {
				_, err := ch.QueueDelete(name, false, false, false)
				return err
			}))
		}
		exchange := amqp.GenerateExchangeNameTopicName(u.topic)
		errs = append(errs, onChannel(func(ch *amqp091.Channel) error { return ch.ExchangeDelete(exchange, false, false) }))
	}
	return errors.Join(errs...)
}

// noClose lets several routers share one gochannel; the transport closes it.
type noClose struct{ *gochannel.GoChannel }

func (noClose) Close() error { return nil }
