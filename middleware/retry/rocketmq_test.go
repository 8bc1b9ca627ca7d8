//go:build !race

// These tests run the RocketMQ client, which has data races of its own: they
// are left out of race-detector builds.

package retry_test

import (
	crand "crypto/rand"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

func newRocketMQ(t *testing.T) (*rocketmqtest.Broker, *rocketmq.Publisher) {
	t.Helper()
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{b.NameServerAddr()}}, watermill.NopLogger{})
	if err != nil {
		t.Fatalf("rocketmq.NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	return b, pub
}

func storedUUIDs(b *rocketmqtest.Broker, topic string) []string {
	var ids []string
	for _, m := range b.Messages(topic) {
		ids = append(ids, m.Properties[rocketmq.PropertyUUID])
	}
	sort.Strings(ids) // queues interleave: order is not defined
	return ids
}

func TestPublisher_on_rocketmq_retries_a_busy_broker_and_stores_the_message_once(t *testing.T) {
	b, inner := newRocketMQ(t)
	topic := "retry_busy_" + watermill.NewShortUUID()
	// Create the route first, so the faults below hit sends only.
	if err := inner.Publish(topic, message.NewMessage("warm-up", []byte("w"))); err != nil {
		t.Fatalf("warm-up publish: %v", err)
	}

	clk := clocktest.NewFake(time.Time{})
	hooks := &hookLog{}
	p := policy.Policy{MaxAttempts: 5, Backoff: policy.Exponential(time.Second, 2, 0)}
	pub := newPublisher(t, inner, p, clk, hooks)

	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemBusy, 2)
	m := message.NewMessage(watermill.NewUUID(), []byte("order"))
	waits, err := drive(t, clk, func() error { return pub.Publish(topic, m) })
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, waits); diff != "" {
		t.Fatalf("waits (-want +got):\n%s", diff)
	}
	if n := len(hooks.get()); n != 2 {
		t.Fatalf("RetryHook called %d times; want 2", n)
	}
	for _, h := range hooks.get() {
		if !errors.Is(h.Err, rocketmq.ErrBrokerUnavailable) {
			t.Fatalf("retried error %v is not ErrBrokerUnavailable", h.Err)
		}
	}
	want := []string{"warm-up", m.UUID}
	sort.Strings(want)
	if diff := cmp.Diff(want, storedUUIDs(b, topic)); diff != "" {
		t.Fatalf("stored (-want +got):\n%s", diff)
	}
}

func TestPublisher_on_rocketmq_gives_up_after_max_attempts_with_the_broker_error(t *testing.T) {
	b, inner := newRocketMQ(t)
	topic := "retry_down_" + watermill.NewShortUUID()
	if err := inner.Publish(topic, message.NewMessage("warm-up", []byte("w"))); err != nil {
		t.Fatalf("warm-up publish: %v", err)
	}
	clk := clocktest.NewFake(time.Time{})
	pub := newPublisher(t, inner, policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Minute)}, clk, nil)

	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespServiceNotAvailable, -1)
	waits, err := drive(t, clk, func() error { return pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x"))) })
	b.ClearFaults()
	var ex *retry.ExhaustedError
	if !errors.As(err, &ex) || ex.Attempts != 3 || !errors.Is(err, rocketmq.ErrBrokerUnavailable) {
		t.Fatalf("Publish = %v; want ExhaustedError after 3 attempts wrapping ErrBrokerUnavailable", err)
	}
	if len(waits) != 2 {
		t.Fatalf("waited %d times; want 2", len(waits))
	}
	if got := storedUUIDs(b, topic); len(got) != 1 {
		t.Fatalf("stored %v; want only the warm-up message", got)
	}
}

func TestPublisher_on_rocketmq_does_not_retry_permanent_errors(t *testing.T) {
	b, inner := newRocketMQ(t)
	topic := "retry_perm_" + watermill.NewShortUUID()
	if err := inner.Publish(topic, message.NewMessage("warm-up", []byte("w"))); err != nil {
		t.Fatalf("warm-up publish: %v", err)
	}
	clk := clocktest.NewFake(time.Time{})
	hooks := &hookLog{}
	pub := newPublisher(t, inner, policy.RocketMQ(), clk, hooks)

	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespNoPermission, 1)
	err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("x")))
	if !policy.IsPermanent(err) || !errors.Is(err, rocketmq.ErrNoPermission) {
		t.Fatalf("Publish = %v; want permanent ErrNoPermission", err)
	}
	if len(hooks.get()) != 0 || clk.Pending() != 0 {
		t.Fatalf("permanent error was retried (%d hooks, %d timers)", len(hooks.get()), clk.Pending())
	}
	// Invalid input never reaches the broker and is not retried either.
	err = pub.Publish("bad topic!", message.NewMessage(watermill.NewUUID(), []byte("x")))
	if !errors.Is(err, rocketmq.ErrInvalidTopic) || !policy.IsPermanent(err) || len(hooks.get()) != 0 {
		t.Fatalf("Publish to an invalid topic = %v", err)
	}
}

// Two messages of one call share a UUID; the broker takes the first and
// refuses the second as too large. The second was neither sent nor stored,
// so Publish must not return nil (it did when accepted messages were tracked
// by UUID: the first one's acceptance covered the second).
func TestPublisher_on_rocketmq_does_not_report_success_for_a_refused_message_sharing_a_uuid(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{MaxMessageSize: 1 << 10})
	inner, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{b.NameServerAddr()}}, watermill.NopLogger{})
	if err != nil {
		t.Fatalf("rocketmq.NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = inner.Close() })
	pub, err := retry.NewPublisher(inner, retry.Config{Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Millisecond)}}, nil)
	if err != nil {
		t.Fatalf("retry.NewPublisher: %v", err)
	}
	topic := "retry_dup_uuid_" + watermill.NewShortUUID()
	id := watermill.NewUUID()
	m1 := message.NewMessage(id, []byte("small"))
	m2 := message.NewMessage(id, make([]byte, 2<<10))

	err = pub.Publish(topic, m1, m2)
	if err == nil {
		t.Fatal("Publish = nil; the second message was refused by the broker")
	}
	if !errors.Is(err, rocketmq.ErrMessageTooLarge) || !policy.IsPermanent(err) {
		t.Errorf("Publish = %v; want a permanent ErrMessageTooLarge", err)
	}
	var se *rocketmq.SendError
	if !errors.As(err, &se) || se.Index != 1 {
		t.Fatalf("Publish = %v; want a SendError at index 1", err)
	}
	// Counted by UUID and body: the small one once, the large one not at all.
	var small, large int
	for _, m := range b.Messages(topic) {
		if m.Properties[rocketmq.PropertyUUID] != id {
			t.Errorf("stored a message with UUID %q", m.Properties[rocketmq.PropertyUUID])
		}
		if len(m.Body) == len(m1.Payload) {
			small++
		} else {
			large++
		}
	}
	if small != 1 || large != 0 {
		t.Errorf("broker stored %d small and %d large copies; want 1 and 0", small, large)
	}
}

// The same on real brokers: their limit is 4 MiB, the publisher's is raised
// so that the broker is the one refusing.
func TestPublisher_on_real_rocketmq_does_not_report_success_for_a_refused_message_sharing_a_uuid(t *testing.T) {
	for _, srv := range []servicetest.RocketMQServer{servicetest.RocketMQ494, servicetest.RocketMQ520} {
		t.Run(srv.Version, func(t *testing.T) {
			c := srv.Cluster(t)
			inner, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{c.NameServer},
				MaxMessageSize: 8 << 20, SendTimeout: 10 * time.Second}, watermill.NopLogger{})
			if err != nil {
				t.Fatalf("rocketmq.NewPublisher: %v", err)
			}
			t.Cleanup(func() { _ = inner.Close() })
			pub, err := retry.NewPublisher(inner, retry.Config{Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(100 * time.Millisecond)}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			topic := "retry_dup_uuid_" + watermill.NewShortUUID()
			id := watermill.NewUUID()
			large := make([]byte, 5<<20)
			if _, err := crand.Read(large); err != nil { // incompressible: the client zips bodies over 4 KiB
				t.Fatal(err)
			}
			m1 := message.NewMessage(id, []byte("small"))
			m2 := message.NewMessage(id, large)
			err = pub.Publish(topic, m1, m2)
			if err == nil {
				t.Fatal("Publish = nil; the broker refused the second message")
			}
			var se *rocketmq.SendError
			if !errors.As(err, &se) || se.Index != 1 {
				t.Fatalf("Publish = %v; want a SendError at index 1", err)
			}
			if diff := cmp.Diff([]string{id}, se.Accepted()); diff != "" {
				t.Errorf("Accepted (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int{0}, se.AcceptedIndexes()); diff != "" {
				t.Errorf("AcceptedIndexes (-want +got):\n%s", diff)
			}
			t.Logf("Publish = %v", err)
		})
	}
}
