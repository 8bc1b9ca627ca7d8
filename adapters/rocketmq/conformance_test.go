//go:build !race

package rocketmq_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

// conformanceFeatures are the guarantees the adapter really gives:
//   - ConsumerGroups, Persistent: clustering consumer groups with offsets
//     stored by the broker.
//   - GuaranteedOrder false: a topic has several queues, consumed
//     concurrently (ConsumeGoroutines per subscription).
//   - ExactlyOnceDelivery false: at-least-once; rebalances and restarts
//     redeliver.
//   - NewSubscriberReceivesOldMessages false for the suite's shared group (a
//     group resumes from its committed offsets); a *new* group starts at the
//     first offset, which TestNewGroupReceivesOldMessages checks with the
//     suite's own test.
//   - ContextPreserved false: the publisher's context does not travel.
//   - RestartServiceCommand unset: TestReconnect needs an external command;
//     broker restarts are covered by TestSubscriber_keeps_consuming_across_a_broker_restart.
func conformanceFeatures() tests.Features {
	return tests.Features{
		ConsumerGroups:                   true,
		ExactlyOnceDelivery:              false,
		GuaranteedOrder:                  false,
		Persistent:                       true,
		NewSubscriberReceivesOldMessages: false,
	}
}

func pubSubConstructors(b *rocketmqtest.Broker) (tests.PubSubConstructor, tests.ConsumerGroupPubSubConstructor) {
	withGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{b.NameServerAddr()}}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{
			NameServers:   []string{b.NameServerAddr()},
			ConsumerGroup: group,
			CloseTimeout:  time.Second,
		}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	return func(t *testing.T) (message.Publisher, message.Subscriber) {
		return withGroup(t, "conformance")
	}, withGroup
}

func TestPubSub_conformance(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	constructor, groupConstructor := pubSubConstructors(b)
	tests.TestPubSub(t, conformanceFeatures(), constructor, groupConstructor)
}

// TestNewGroupReceivesOldMessages runs the suite's check with a new consumer
// group for every subscriber, where consume-from-first-offset applies.
func TestNewGroupReceivesOldMessages(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	_, groupConstructor := pubSubConstructors(b)
	features := conformanceFeatures()
	features.NewSubscriberReceivesOldMessages = true
	n := 0
	tests.TestNewSubscriberReceivesOldMessages(t, tests.TestContext{TestID: tests.NewTestID(), Features: features},
		func(t *testing.T) (message.Publisher, message.Subscriber) {
			n++
			return groupConstructor(t, "fresh-"+string(rune('a'+n)))
		})
}
