//go:build !race

// The RocketMQ client has data races of its own: these tests run without -race.

package redelivery_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// On real brokers too, the NativeScheduler dead-letters after exactly the policy's
// attempts although the policy allows more than the subscriber's default 16
// redeliveries: the broker honours the subscriber's per-message limit. The
// clusters' delay level n waits n seconds, so 1s retries take level 1.
func TestNative_on_real_brokers_dead_letters_after_exactly_the_policy_attempts(t *testing.T) {
	for _, server := range []servicetest.RocketMQServer{servicetest.RocketMQ494, servicetest.RocketMQ520} {
		t.Run(server.Version, func(t *testing.T) {
			t.Parallel()
			cluster := server.Cluster(t)
			const attempts = 18
			id := watermill.NewShortUUID()
			topic, group := "native_real_"+id, "billing_"+id
			ns := []string{cluster.NameServer}

			pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: ns}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pub.Close() })
			sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: group,
				BrokerRetry: true, CloseTimeout: 5 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			r, err := redelivery.New(redelivery.Config{ConsumerGroup: group, Handler: "charge", Scheduler: rocketmq.NewNativeScheduler(rocketmq.NativeConfig{}),
				Policy:              policy.Policy{MaxAttempts: attempts, Backoff: policy.Fixed(time.Second)},
				DeadLetterPublisher: pub}, nil)
			if err != nil {
				t.Fatal(err)
			}
			dlqSub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: group + "_dlq_reader",
				CloseTimeout: 5 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dead, err := dlqSub.Subscribe(ctx, r.Config().DeadLetterTopic)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = dlqSub.Close() })

			var mu sync.Mutex
			runs := map[string]int{}
			router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.AddConsumerHandler(router, topic, sub, func(m *message.Message) error {
				mu.Lock()
				runs[m.UUID]++
				mu.Unlock()
				return errors.New("charge declined")
			}); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { defer close(done); _ = router.Run(ctx) }()
			<-router.Running()
			t.Cleanup(func() {
				_ = router.Close()
				<-done
				_ = r.Close()
				_ = sub.Close()
			})

			msg := message.NewMessage(watermill.NewUUID(), []byte("order 1"))
			if err := pub.Publish(topic, msg); err != nil {
				t.Fatal(err)
			}
			select {
			case d := <-dead:
				d.Ack()
				if d.UUID != msg.UUID || d.Metadata.Get(metadata.Attempts) != "18" ||
					d.Metadata.Get(metadata.DeadLetterReason) != redelivery.ReasonMaxAttempts {
					t.Fatalf("dead letter %s with attempts %s reason %s, want %s after 18 max_attempts", d.UUID,
						d.Metadata.Get(metadata.Attempts), d.Metadata.Get(metadata.DeadLetterReason), msg.UUID)
				}
			case <-ctx.Done():
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("no dead letter after %d handler runs", runs[msg.UUID])
			}
			time.Sleep(3 * time.Second) // a further redelivery would come within a second or two
			mu.Lock()
			defer mu.Unlock()
			if got := runs[msg.UUID]; got != attempts {
				t.Errorf("handler ran %d times, want exactly %d", got, attempts)
			}
		})
	}
}
