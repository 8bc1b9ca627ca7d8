package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/middleware/fallback"
)

// outage is a publisher that refuses every message while down is set.
type outage struct {
	message.Publisher
	down atomic.Bool
}

func (o *outage) Publish(topic string, msgs ...*message.Message) error {
	if o.down.Load() {
		return errors.New("broker unavailable")
	}
	return o.Publisher.Publish(topic, msgs...)
}

// A message published while the broker is down is stored, then delivered by
// the relay once the broker is back, with its UUID unchanged.
func Example() {
	db, err := sqlite.Open(":memory:")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	store, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, AutoInitialize: true}, nil)
	if err != nil {
		panic(err)
	}
	pubSub := gochannel.NewGoChannel(gochannel.Config{Persistent: true}, watermill.NopLogger{})
	defer pubSub.Close()
	broker := &outage{Publisher: pubSub}
	broker.down.Store(true)

	// In production: fallback.NewPublisher(retry.NewPublisher(rocketmq.NewPublisher(...))).
	publisher, err := fallback.NewPublisher(broker, fallback.Config{Store: store}, nil)
	if err != nil {
		panic(err)
	}
	if err := publisher.Publish("orders", message.NewMessage("order-1", []byte(`{"id":1}`))); err != nil {
		panic(err)
	}
	stats, _ := store.Stats(context.Background(), "")
	fmt.Println("stored while the broker is down:", stats.Backlog)

	broker.down.Store(false)
	relay, err := fallback.NewRelay(fallback.RelayConfig{Store: store, Publisher: broker, PollInterval: 10 * time.Millisecond}, nil)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- relay.Run(ctx) }()

	msgs, err := pubSub.Subscribe(ctx, "orders")
	if err != nil {
		panic(err)
	}
	m := <-msgs
	m.Ack()
	fmt.Println("delivered by the relay:", m.UUID, string(m.Payload))
	cancel()
	<-done
	// Output:
	// stored while the broker is down: 1
	// delivered by the relay: order-1 {"id":1}
}
