//go:build !race

package brokersuite_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/reliamq/reliamq/adapters/rocketmq"
)

// conformanceFeatures are the guarantees the adapter gives on every target
// (adapters/rocketmq/conformance_test.go explains each):
// consumer groups with broker-stored offsets, no order across queues,
// at-least-once, a group resumes from its committed offsets.
// RestartServiceCommand stays unset: broker restarts are TestOutage_*.
//
// ForceShort on the real targets: every test of the suite still runs, with
// Watermill's short counts (for example 10 subscribers of 100 messages
// instead of 50 of 5000, one nacking subscriber of 5 messages instead of 3
// of 100). The full counts run on the embedded broker. On the real clusters,
// which share a 2-core machine with the rest of CI, the full counts took up
// to 142 s for one test and timed out once (TestContinueAfterErrors, while
// the name servers answered with i/o timeouts under load), without testing
// anything the short counts do not.
func conformanceFeatures(tg *target) tests.Features {
	return tests.Features{
		ConsumerGroups:                   true,
		ExactlyOnceDelivery:              false,
		GuaranteedOrder:                  false,
		Persistent:                       true,
		NewSubscriberReceivesOldMessages: false,
		ForceShort:                       tg.real,
	}
}

func conformanceConstructors(tg *target) (tests.PubSubConstructor, tests.ConsumerGroupPubSubConstructor) {
	withGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: tg.nameServers}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{
			NameServers:   tg.nameServers,
			ConsumerGroup: group,
			CloseTimeout:  time.Second,
		}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		return pub, sub
	}
	// Topics are unique per suite test; the group's name is unique per run
	// too, so nothing is shared with an earlier run on a real cluster.
	group := unique("conformance")
	return func(t *testing.T) (message.Publisher, message.Subscriber) {
		return withGroup(t, group)
	}, withGroup
}

func TestWatermill_conformance_suite_passes(t *testing.T) {
	t.Parallel()
	eachTarget(t, func(t *testing.T, tg *target) {
		constructor, groupConstructor := conformanceConstructors(tg)
		tests.TestPubSub(t, conformanceFeatures(tg), constructor, groupConstructor)
	})
}

// A new consumer group starts at the first offset (ConsumeFromFirstOffset),
// so it receives what was published before it subscribed.
func TestWatermill_new_consumer_group_receives_old_messages(t *testing.T) {
	t.Parallel()
	eachTarget(t, func(t *testing.T, tg *target) {
		_, groupConstructor := conformanceConstructors(tg)
		features := conformanceFeatures(tg)
		features.NewSubscriberReceivesOldMessages = true
		tests.TestNewSubscriberReceivesOldMessages(t, tests.TestContext{TestID: tests.NewTestID(), Features: features},
			func(t *testing.T) (message.Publisher, message.Subscriber) {
				return groupConstructor(t, unique("fresh"))
			})
	})
}
