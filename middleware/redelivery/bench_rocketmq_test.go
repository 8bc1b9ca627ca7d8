//go:build !race

package redelivery_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/middleware/redelivery"
)

// BenchmarkConsumer_healthy_throughput_with_1pct_failing_RocketMQ is the
// same comparison on the embedded broker with one consume goroutine (serial
// delivery): reliamq with the NativeScheduler (the broker keeps the 1 s wait, delay
// level 1, real durations) vs Watermill's Retry+PoisonQueue vs no failures.
func BenchmarkConsumer_healthy_throughput_with_1pct_failing_RocketMQ(b *testing.B) {
	for _, v := range consumerVariants(func() redelivery.Scheduler { return rocketmq.NewNativeScheduler(rocketmq.NativeConfig{}) }) {
		b.Run("rocketmq/"+v.name, func(b *testing.B) {
			runConsumerBenchmark(b, v, func(b *testing.B) (message.Publisher, message.Subscriber) {
				broker := rocketmqtest.NewTest(b, rocketmqtest.Config{LongPollHold: 200 * time.Millisecond})
				pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{broker.NameServerAddr()}, Batch: true}, watermill.NopLogger{})
				if err != nil {
					b.Fatal(err)
				}
				// One message per consume call for every variant: the native
				// scheduler needs BrokerRetry, which consumes one at a time.
				sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{
					NameServers: []string{broker.NameServerAddr()}, ConsumerGroup: "bench",
					BrokerRetry: strings.HasPrefix(v.name, "reliamq_"), ConsumeGoroutines: 1, ConsumeBatch: 1,
					CloseTimeout: 2 * time.Second,
				}, watermill.NopLogger{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = pub.Close() })
				return pub, sub
			})
		})
	}
}
