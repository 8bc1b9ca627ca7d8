//go:build !race

package inbox_test

import (
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/internal/transporttest"
	"github.com/reliamq/reliamq/middleware/redelivery"
)

// rocketMQTransport consumes with a BrokerRetry subscriber and redelivery in
// Native mode (the broker's %RETRY%<group> keeps the wait), the standard
// RocketMQ consumer stack.
func rocketMQTransport(nameServers []string) transport {
	tr := transporttest.RocketMQ("rocketmq", func(*testing.T) []string { return nameServers },
		rocketmq.PublisherConfig{}, rocketmq.SubscriberConfig{BrokerRetry: true, CloseTimeout: 5 * time.Second})
	return transport{Transport: tr, timeout: 3 * time.Minute,
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
	for _, tg := range transporttest.RocketMQTargets(rocketmqtest.Config{LongPollHold: 200 * time.Millisecond}) {
		t.Run(tg.Name, func(t *testing.T) {
			tr := rocketMQTransport(tg.NameServers(t))
			t.Run("sql-inbox", func(t *testing.T) { runDuplicateScenario(t, tr, postgresInbox(t), scenarioMessages) })
			t.Run("redis-inbox", func(t *testing.T) {
				runDuplicateScenario(t, tr, newRedisStore(t, redisinboxConfig()), scenarioMessages)
			})
		})
	}
}
