package redelivery_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// A handler that fails twice is redelivered with the same UUID and a growing
// reconsume count, without blocking the subscription while it waits.
func ExampleRedelivery_AddConsumerHandler() {
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	defer pubSub.Close()

	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "billing",
		Handler:       "charge",
		Scheduler:     redelivery.NewInMemory(redelivery.InMemoryConfig{}), // policy.RocketMQ() waits 10s, 30s, 1m ...; shortened here
		Policy:        policy.Policy{MaxAttempts: 17, Backoff: policy.Table(10*time.Millisecond, 30*time.Millisecond)},
		Publisher:     pubSub,
	}, nil)
	if err != nil {
		panic(err)
	}
	defer r.Close()

	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	done := make(chan struct{})
	_, err = r.AddConsumerHandler(router, "orders", pubSub, func(msg *message.Message) error {
		n := msg.Metadata.Get(metadata.ReconsumeTimes)
		fmt.Printf("%s reconsumed %s times\n", msg.UUID, n)
		if n != "2" {
			return errors.New("payment service down")
		}
		close(done)
		return nil
	})
	if err != nil {
		panic(err)
	}
	go func() { _ = router.Run(context.Background()) }()
	defer router.Close()
	<-router.Running()

	if err := pubSub.Publish("orders", message.NewMessage("order-42", []byte(`{}`))); err != nil {
		panic(err)
	}
	<-done
	// Output:
	// order-42 reconsumed 0 times
	// order-42 reconsumed 1 times
	// order-42 reconsumed 2 times
}
