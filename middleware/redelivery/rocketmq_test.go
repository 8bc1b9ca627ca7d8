//go:build !race

// The RocketMQ client has data races of its own: these tests run without -race.

package redelivery_test

import (
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/internal/transporttest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/redelivery/redeliverytest"
)

// rocketMQBackend runs the suite on one embedded broker per test. With
// brokerRetry the subscriber hands nacked messages to the broker (the
// NativeScheduler); delay levels are scaled by 1/100, so level 1 (1s) is 10 ms and the
// head-of-line test's 1h is 36 s.
func rocketMQBackend(brokerRetry bool, configure func(*testing.T, *redelivery.Config)) redeliverytest.Backend {
	tr := transporttest.RocketMQ("rocketmq-embedded",
		transporttest.Embedded(rocketmqtest.Config{DelayScale: 0.01, LongPollHold: 200 * time.Millisecond}),
		rocketmq.PublisherConfig{Marshaler: rocketmq.RetryTopicMarshaler{}},
		rocketmq.SubscriberConfig{BrokerRetry: brokerRetry, CloseTimeout: 2 * time.Second})
	return redeliverytest.Backend{
		NewPubSub: tr.NewPubSub,
		Configure: configure,
		// Dead letters of the NativeScheduler name no retry topic: %RETRY% of the RocketMQ
		// group the subscriber uses for the topic (Subscriber.GroupFor).
		ReplayRetryTopic: func(group, topic string) string {
			if !brokerRetry {
				return ""
			}
			return "%RETRY%" + group + "_" + topic
		},
	}
}

func TestConformance_RocketMQ_native(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{
		ConsumerGroups: true, Durable: true, Native: true, HeadOfLineMessages: externalHeadOfLine,
		// 10m is level 14, 6 s at this scale: longer than stopping a consumer
		// on a loaded machine, so no retry reaches the stopping one.
		RestartDelay: 10 * time.Minute,
	}, rocketMQBackend(true, func(_ *testing.T, cfg *redelivery.Config) {
		cfg.Scheduler = rocketmq.NewNativeScheduler(rocketmq.NativeConfig{})
	}))
}

func TestConformance_RocketMQ_durable(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine},
		rocketMQBackend(false, sqliteDurable))
}
