//go:build !race

package brokersuite_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// redeliveryPolicy retries after 1 s (delay level 1 in Native mode) and
// dead-letters after the third attempt.
func redeliveryPolicy() policy.Policy {
	return policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Second)}
}

// TestRedelivery_Native_retries_through_the_broker_and_dead_letters runs
// middleware/redelivery with the NativeScheduler on a BrokerRetry subscriber.
func TestRedelivery_Native_retries_through_the_broker_and_dead_letters(t *testing.T) {
	t.Parallel()
	eachTarget(t, func(t *testing.T, tg *target) {
		runRedelivery(t, tg, true)
	})
}

// TestRedelivery_Durable_retries_through_the_SQLite_store_and_dead_letters
// runs middleware/redelivery with the Durable scheduler on a SQLite store.
func TestRedelivery_Durable_retries_through_the_SQLite_store_and_dead_letters(t *testing.T) {
	t.Parallel()
	eachTarget(t, func(t *testing.T, tg *target) {
		runRedelivery(t, tg, false)
	})
}

// runRedelivery sends good messages (acked at once), flaky ones (failing
// until their third delivery) and poison ones (always failing) through a
// router handler under redelivery (native: the NativeScheduler, else
// Durable), and counts by UUID: every good and
// flaky message handled, every poison one dead-lettered after three
// attempts, each flaky one seen with reconsume times 0, 1, 2.
func runRedelivery(t *testing.T, tg *target, native bool) {
	const perKind = 4
	pol := redeliveryPolicy()
	pub := newPublisher(t, tg, rocketmq.PublisherConfig{})
	group := unique("rd")
	sub := newSubscriber(t, tg, rocketmq.SubscriberConfig{ConsumerGroup: group,
		BrokerRetry: native, MaxReconsumeTimes: redelivery.MaxReconsumeTimes(pol)})
	topic, dlqTopic := unique("rd"), unique("rdlq")
	cfg := redelivery.Config{ConsumerGroup: group, Handler: "h", Policy: pol,
		Scheduler: rocketmq.NewNativeScheduler(rocketmq.NativeConfig{}),
		Publisher: pub, DeadLetterPublisher: pub, DeadLetterTopic: dlqTopic}
	if !native {
		cfg.Scheduler = redelivery.NewDurable(redelivery.DurableConfig{
			Store:        sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{}),
			PollInterval: 100 * time.Millisecond,
		})
		cfg.RetryTopic = unique("rdretry")
	}
	r, err := redelivery.New(cfg, testLogger())
	if err != nil {
		t.Fatalf("redelivery.New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })

	dead := newLedger()
	dlqSub := newSubscriber(t, tg, rocketmq.SubscriberConfig{})
	deadMsgs := subscribe(t, dlqSub, dlqTopic)
	var deadMu sync.Mutex
	deadMeta := map[string][2]string{} // UUID -> attempts, reason
	go func() {
		for m := range deadMsgs {
			deadMu.Lock()
			deadMeta[m.UUID] = [2]string{m.Metadata.Get(metadata.Attempts), m.Metadata.Get(metadata.DeadLetterReason)}
			deadMu.Unlock()
			dead.markDelivered(m.UUID)
			m.Ack()
		}
	}()

	handled := newLedger()
	var mu sync.Mutex
	seen := map[string][]string{} // UUID -> reconsume times of each attempt
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.AddConsumerHandler(router, topic, sub, func(m *message.Message) error {
		n := m.Metadata.Get(metadata.ReconsumeTimes)
		mu.Lock()
		seen[m.UUID] = append(seen[m.UUID], n)
		mu.Unlock()
		switch string(m.Payload[:4]) {
		case "good":
		case "flak":
			if k, _ := strconv.Atoi(n); k < 2 {
				return errors.New("flaky handler fails")
			}
		default:
			return errors.New("poison fails every time")
		}
		handled.markDelivered(m.UUID)
		return nil
	})
	if err != nil {
		t.Fatalf("AddConsumerHandler: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = router.Run(ctx) }()
	t.Cleanup(func() { cancel(); _ = router.Close(); <-runDone })
	select {
	case <-router.Running():
	case <-time.After(time.Minute):
		t.Fatal("router not running after 1 minute")
	}

	var flaky []string
	for i := range perKind {
		for _, kind := range []string{"good", "flaky", "poison"} {
			m := newMessage(fmt.Sprint(kind, "-", i), nil)
			switch kind {
			case "poison":
				dead.markSent(m.UUID)
			case "flaky":
				flaky = append(flaky, m.UUID)
				handled.markSent(m.UUID)
			default:
				handled.markSent(m.UUID)
			}
			if err := pub.Publish(topic, m); err != nil {
				t.Fatalf("Publish: %v", err)
			}
		}
	}
	ch := handled.waitDelivered(t, 90*time.Second)
	cd := dead.waitDelivered(t, 90*time.Second)
	t.Logf("handled: %v; dead-lettered: %v; stats %+v", ch, cd, r.Stats())
	if ch.unknown != 0 || cd.unknown != 0 {
		t.Errorf("unexpected UUIDs: handled %v, dead-lettered %v", ch, cd)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, uuid := range flaky {
		if got := seen[uuid]; len(got) < 3 || fmt.Sprint(got[:3]) != "[0 1 2]" {
			t.Errorf("flaky %s attempts with reconsume times %v, want [0 1 2]", uuid, got)
		}
	}
	deadMu.Lock()
	defer deadMu.Unlock()
	for uuid, md := range deadMeta {
		if md != [2]string{"3", redelivery.ReasonMaxAttempts} {
			t.Errorf("dead letter %s: attempts %q reason %q, want 3 %s", uuid, md[0], md[1], redelivery.ReasonMaxAttempts)
		}
	}
}
