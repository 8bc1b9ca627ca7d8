//go:build !race

package rocketmq_test

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/metadata"
)

func ExampleNewPublisher() {
	broker, err := rocketmqtest.New(rocketmqtest.Config{})
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	nameServers := []string{broker.NameServerAddr()}

	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: nameServers}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	defer pub.Close()
	sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: nameServers, ConsumerGroup: "billing"}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	msgs, err := sub.Subscribe(context.Background(), "orders")
	if err != nil {
		panic(err)
	}
	msg := message.NewMessage("order-42", []byte(`{"total": 12}`))
	msg.Metadata.Set(metadata.Tags, "created")
	msg.Metadata.Set("tenant", "acme")
	if err := pub.Publish("orders", msg); err != nil {
		panic(err)
	}

	got := <-msgs
	fmt.Println(got.UUID, string(got.Payload))
	fmt.Println("tag:", got.Metadata.Get(metadata.Tags), "tenant:", got.Metadata.Get("tenant"))
	fmt.Println("reconsume times:", got.Metadata.Get(metadata.ReconsumeTimes))
	got.Ack()
	// Output:
	// order-42 {"total": 12}
	// tag: created tenant: acme
	// reconsume times: 0
}
