//go:build !race

// The RocketMQ client has data races of its own: these tests run without -race.

package redelivery_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// nativeRig is a Redelivery with the NativeScheduler on the embedded broker with the real
// client: a broker-retry subscriber configured with nothing but its group
// (plus subCfg), a router, and a handler that fails its first failFor
// deliveries of each message.
type nativeRig struct {
	b     *rocketmqtest.Broker
	pub   *rocketmq.Publisher
	sub   *rocketmq.Subscriber
	r     *redelivery.Redelivery
	mu    sync.Mutex
	count map[string]int // deliveries by UUID
	acked chan string
}

func newNativeRig(t *testing.T, p policy.Policy, subCfg rocketmq.SubscriberConfig, failFor int, topic string) *nativeRig {
	t.Helper()
	// Delay level 1 (1s) is 10 ms at this scale.
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DelayScale: 0.01, LongPollHold: 200 * time.Millisecond})
	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{b.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	subCfg.NameServers = []string{b.NameServerAddr()}
	subCfg.ConsumerGroup = "billing"
	subCfg.BrokerRetry = true
	subCfg.CloseTimeout = 2 * time.Second
	sub, err := rocketmq.NewSubscriber(subCfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "billing", Handler: "charge", Scheduler: rocketmq.NewNativeScheduler(rocketmq.NativeConfig{}), Policy: p,
		DeadLetterPublisher: pub,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rig := &nativeRig{b: b, pub: pub, sub: sub, r: r, count: map[string]int{}, acked: make(chan string, 100)}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddConsumerHandler(router, topic, sub, func(m *message.Message) error {
		rig.mu.Lock()
		rig.count[m.UUID]++
		n := rig.count[m.UUID]
		rig.mu.Unlock()
		if n <= failFor {
			return errors.New("charge declined")
		}
		rig.acked <- m.UUID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	<-router.Running()
	t.Cleanup(func() {
		_ = router.Close()
		cancel()
		<-done
		_ = r.Close()
		_ = sub.Close()
	})
	return rig
}

func (rig *nativeRig) deliveries(uuid string) int {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return rig.count[uuid]
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// Regression: Native mode (now the NativeScheduler) needed the subscriber's MaxReconsumeTimes kept equal
// to the policy by hand; with the default 16 a policy of 20 attempts ended in
// %DLQ%<group> after 17 deliveries, without the middleware's metadata.
func TestNative_dead_letters_after_exactly_the_policy_attempts_whatever_the_subscriber_limit(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		subscriber  rocketmq.SubscriberConfig
	}{
		{name: "policy above the subscriber default of 16", maxAttempts: 20},
		{name: "policy above an explicit lower subscriber limit", maxAttempts: 5, subscriber: rocketmq.SubscriberConfig{MaxReconsumeTimes: 2}},
		{name: "policy below the subscriber limit", maxAttempts: 3, subscriber: rocketmq.SubscriberConfig{MaxReconsumeTimes: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := "native_limit_" + watermill.NewShortUUID()
			p := policy.Policy{MaxAttempts: tt.maxAttempts, Backoff: policy.Fixed(time.Second)}
			rig := newNativeRig(t, p, tt.subscriber, 1<<30, topic)
			msg := message.NewMessage(watermill.NewUUID(), []byte("order 1"))
			if err := rig.pub.Publish(topic, msg); err != nil {
				t.Fatal(err)
			}
			dlq := rig.r.Config().DeadLetterTopic
			if !waitFor(60*time.Second, func() bool { return len(rig.b.Messages(dlq)) > 0 }) {
				t.Fatalf("nothing reached %s after %d deliveries; broker DLQ holds %d", dlq,
					rig.deliveries(msg.UUID), len(rig.b.Messages("%DLQ%"+rig.sub.GroupFor(topic))))
			}
			// Anything still on its way would arrive within a few delay levels.
			time.Sleep(500 * time.Millisecond)
			if got := rig.deliveries(msg.UUID); got != tt.maxAttempts {
				t.Errorf("handler ran %d times, want exactly the policy's %d attempts", got, tt.maxAttempts)
			}
			dead := rig.b.Messages(dlq)
			if len(dead) != 1 || dead[0].Properties[rocketmq.PropertyUUID] != msg.UUID {
				t.Fatalf("%s holds %d messages, want the failed one once", dlq, len(dead))
			}
			if got := dead[0].Properties[rocketmq.PropertyMetadataPrefix+metadata.Attempts]; got != strconv.Itoa(tt.maxAttempts) {
				t.Errorf("dead letter says %s attempts, want %d", got, tt.maxAttempts)
			}
			if n := len(rig.b.Messages("%DLQ%" + rig.sub.GroupFor(topic))); n != 0 {
				t.Errorf("the broker dead-lettered %d messages itself", n)
			}
		})
	}
}

// Regression: an unlimited policy gave MaxReconsumeTimes -1, which
// NewSubscriber refused, and a subscriber left at its default dead-lettered
// after 16 redeliveries.
func TestNative_unlimited_policy_keeps_redelivering_past_the_brokers_default_limit(t *testing.T) {
	const failures = 25
	topic := "native_unlimited_" + watermill.NewShortUUID()
	p := policy.Policy{Backoff: policy.Fixed(time.Second)} // MaxAttempts 0: unlimited
	if redelivery.MaxReconsumeTimes(p) != rocketmq.UnlimitedReconsumeTimes {
		t.Fatalf("MaxReconsumeTimes(unlimited) = %d", redelivery.MaxReconsumeTimes(p))
	}
	for _, subCfg := range []rocketmq.SubscriberConfig{{}, {MaxReconsumeTimes: redelivery.MaxReconsumeTimes(p)}} {
		t.Run("subscriber limit "+strconv.Itoa(subCfg.MaxReconsumeTimes), func(t *testing.T) {
			rig := newNativeRig(t, p, subCfg, failures, topic)
			msg := message.NewMessage(watermill.NewUUID(), []byte("order 1"))
			if err := rig.pub.Publish(topic, msg); err != nil {
				t.Fatal(err)
			}
			select {
			case id := <-rig.acked:
				if id != msg.UUID {
					t.Fatalf("acked %s, want %s", id, msg.UUID)
				}
			case <-time.After(90 * time.Second):
				t.Fatalf("not acked after %d deliveries; broker DLQ holds %d", rig.deliveries(msg.UUID),
					len(rig.b.Messages("%DLQ%"+rig.sub.GroupFor(topic))))
			}
			if got := rig.deliveries(msg.UUID); got != failures+1 {
				t.Errorf("handler ran %d times, want %d", got, failures+1)
			}
			if n := len(rig.b.Messages("%DLQ%" + rig.sub.GroupFor(topic))); n != 0 {
				t.Errorf("the broker dead-lettered %d messages", n)
			}
			if n := len(rig.b.Messages(rig.r.Config().DeadLetterTopic)); n != 0 {
				t.Errorf("the middleware dead-lettered %d messages", n)
			}
		})
	}
}
