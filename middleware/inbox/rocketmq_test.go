//go:build !race

package inbox_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// rocketMQTransport consumes with a BrokerRetry subscriber and redelivery in
// Native mode (the broker's %RETRY%<group> keeps the wait), the standard
// RocketMQ consumer stack.
func rocketMQTransport(nameServers []string) transport {
	return transport{name: "rocketmq", timeout: 3 * time.Minute,
		newPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: nameServers}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: nameServers, ConsumerGroup: group,
				BrokerRetry: true, CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			once := closedOnce(sub)
			t.Cleanup(func() { _ = once.Close(); _ = pub.Close() })
			return pub, once
		},
		configure: func(_ *testing.T, cfg *redelivery.Config) {
			cfg.Scheduler = rocketmq.NewNativeScheduler(rocketmq.NativeConfig{})
			cfg.DeadLetterPublisher = cfg.Publisher
		},
	}
}

// The embedded broker and the real RocketMQ 4.9.4 and 5.2.0 clusters: every
// UUID, sent twice and replayed once, with half of them failing their first
// run (retried by the broker), has exactly one effect.
func TestInbox_runs_each_UUID_once_on_RocketMQ(t *testing.T) {
	targets := []struct {
		name        string
		nameServers func(t *testing.T) []string
	}{
		{"embedded", func(t *testing.T) []string {
			return []string{rocketmqtest.NewTest(t, rocketmqtest.Config{LongPollHold: 200 * time.Millisecond}).NameServerAddr()}
		}},
		{"4.9.4", func(t *testing.T) []string { return []string{servicetest.RocketMQ494.Cluster(t).NameServer} }},
		{"5.2.0", func(t *testing.T) []string { return []string{servicetest.RocketMQ520.Cluster(t).NameServer} }},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			tr := rocketMQTransport(tg.nameServers(t))
			t.Run("sql-inbox", func(t *testing.T) { runDuplicateScenario(t, tr, postgresInbox(t), scenarioMessages) })
			t.Run("redis-inbox", func(t *testing.T) {
				runDuplicateScenario(t, tr, newRedisStore(t, redisinboxConfig()), scenarioMessages)
			})
		})
	}
}
