package redelivery_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// flakyPublisher fails its first n publishes.
type flakyPublisher struct {
	mu     sync.Mutex
	failN  int
	topics []string
	msgs   []*message.Message
	pubs   chan struct{}
	// onPublish runs under the lock on every publish.
	onPublish func()
}

func (p *flakyPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer func() { p.mu.Unlock(); p.pubs <- struct{}{} }()
	if p.onPublish != nil {
		p.onPublish()
	}
	if p.failN > 0 {
		p.failN--
		return errors.New("broker down")
	}
	for _, m := range msgs {
		p.topics = append(p.topics, topic)
		p.msgs = append(p.msgs, m)
	}
	return nil
}
func (p *flakyPublisher) Close() error { return nil }

func TestInMemory_publishes_due_messages_in_due_order_and_retries_failed_publishes(t *testing.T) {
	fake := clocktest.NewFake(time.Time{})
	pub := &flakyPublisher{failN: 1, pubs: make(chan struct{}, 100)}
	hooks := newHookRecorder()
	r := newMemory(t, redelivery.Config{Publisher: pub, Clock: fake, Hooks: []any{hooks},
		PublishRetryInterval: 5 * time.Second, DeadLetterPublisher: &capturePublisher{}})
	h := r.Middleware(func(m *message.Message) ([]*message.Message, error) {
		d, _ := time.ParseDuration(string(m.Payload))
		return nil, redelivery.RetryAfter(d)
	})
	// Out of due order, but the earliest first: every timer the scheduler
	// leaves behind when a new message wakes it is then due at 10s, and none
	// can be mistaken below for a later wait.
	for _, d := range []string{"10s", "30s", "20s"} {
		if _, err := h(message.NewMessage("m"+d, []byte(d))); err != nil {
			t.Fatal(err)
		}
	}
	if st := r.Stats(); st.Waiting != 3 || st.Scheduled != 3 {
		t.Fatalf("stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.BlockUntil(ctx, 1); err != nil {
		t.Fatal(err)
	}
	fake.Advance(10 * time.Second) // m10s is due; its first publish fails
	recv(t, pub.pubs, "failed publish")
	if ev := recv(t, hooks.redelivered, "redelivered event"); ev.Err == nil || ev.MessageUUID != "m10s" {
		t.Fatalf("event %+v", ev)
	}
	// Each wait is awaited by its deadline: the scheduler leaves a timer
	// behind whenever a new message woke it, so a timer count would not
	// tell that the next wait started.
	for _, step := range []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second} {
		if err := fake.BlockUntilDue(ctx, fake.Now().Add(step)); err != nil {
			t.Fatal(err)
		}
		fake.Advance(step)
		recv(t, pub.pubs, "publish")
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	var order []string
	for i, m := range pub.msgs {
		order = append(order, m.UUID)
		if pub.topics[i] != "reliamq_retry_g_h" || m.Metadata.Get(metadata.ReconsumeTimes) != "1" || m.Metadata.Get(redelivery.RedeliveryCount) != "1" {
			t.Fatalf("published %s to %s with %v", m.UUID, pub.topics[i], m.Metadata)
		}
	}
	if len(order) != 3 || order[0] != "m10s" || order[1] != "m20s" || order[2] != "m30s" {
		t.Fatalf("published order %v", order)
	}
	if st := r.Stats(); st.Waiting != 0 || st.Redelivered != 3 || st.PublishFailures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInMemory_Close_counts_the_waiting_messages_as_lost_and_refuses_new_ones(t *testing.T) {
	r, err := redelivery.New(redelivery.Config{ConsumerGroup: "g", Handler: "h", Mode: redelivery.InMemory,
		Publisher: &capturePublisher{}, Policy: policy.Policy{MaxAttempts: 5, Backoff: policy.Fixed(time.Hour)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("x") })
	for i := 0; i < 3; i++ {
		if _, err := h(message.NewMessage("m", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.LostOnClose != 3 || st.Waiting != 0 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := h(message.NewMessage("m", nil)); !errors.Is(err, redelivery.ErrClosed) {
		t.Fatalf("after Close: err = %v, want ErrClosed (nack)", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDeadLetter_publish_failure_nacks_the_delivery_with_both_errors(t *testing.T) {
	errPub := errors.New("dlq down")
	r := newMemory(t, redelivery.Config{DeadLetterPublisher: &capturePublisher{err: errPub}})
	errBad := errors.New("bad")
	_, err := r.Middleware(func(*message.Message) ([]*message.Message, error) {
		return nil, policy.Permanent(errBad)
	})(message.NewMessage("m", nil))
	if !errors.Is(err, errPub) || !errors.Is(err, errBad) {
		t.Fatalf("err = %v, want both causes", err)
	}
	if st := r.Stats(); st.DeadLettered != 0 {
		t.Fatalf("stats %+v", st)
	}
}
