//go:build !race

// The RocketMQ client has data races of its own: these tests run without -race.

package redelivery_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/redelivery/redeliverytest"
)

// rocketMQBackend runs the suite on one embedded broker per test. With
// brokerRetry the subscriber hands nacked messages to the broker (the
// NativeScheduler); delay levels are scaled by 1/100, so level 1 (1s) is 10 ms and the
// head-of-line test's 1h is 36 s.
func rocketMQBackend(brokerRetry bool, configure func(*testing.T, *redelivery.Config)) redeliverytest.Backend {
	broker := redeliverytest.PerTest(func(t *testing.T) *rocketmqtest.Broker {
		return rocketmqtest.NewTest(t, rocketmqtest.Config{DelayScale: 0.01, LongPollHold: 200 * time.Millisecond})
	})
	return redeliverytest.Backend{
		NewPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
			b := broker(t)
			pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{b.NameServerAddr()},
				Marshaler: rocketmq.RetryTopicMarshaler{}}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{
				NameServers: []string{b.NameServerAddr()}, ConsumerGroup: group,
				BrokerRetry: brokerRetry, CloseTimeout: 2 * time.Second,
			}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pub.Close() })
			return pub, closedOnce(t, sub)
		},
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
