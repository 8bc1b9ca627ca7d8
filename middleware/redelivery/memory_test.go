package redelivery_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

var errBrokerDown = errors.New("broker down")

func TestInMemory_publishes_due_messages_in_due_order_and_retries_failed_publishes(t *testing.T) {
	fake := clocktest.NewFake(time.Time{})
	pub := &fakepub.Publisher{Script: []error{errBrokerDown}}
	hooks := newHookRecorder()
	r := newMemory(t, redelivery.Config{Publisher: pub, Clock: fake, Hooks: []any{hooks},
		Scheduler:           redelivery.NewInMemory(redelivery.InMemoryConfig{PublishRetryInterval: 5 * time.Second}),
		DeadLetterPublisher: &fakepub.Publisher{}})
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
	if ev := recv(t, hooks.redelivered, "redelivered event"); !errors.Is(ev.Err, errBrokerDown) || ev.MessageUUID != "m10s" {
		t.Fatalf("event %+v", ev)
	}
	// Each wait is awaited by its deadline: the scheduler leaves a timer
	// behind whenever a new message woke it, so a timer count would not
	// tell that the next wait started.
	for i, step := range []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second} {
		if err := fake.BlockUntilDue(ctx, fake.Now().Add(step)); err != nil {
			t.Fatal(err)
		}
		fake.Advance(step)
		if !pub.WaitAccepted(i+1, 10*time.Second) {
			t.Fatalf("publish %d did not happen", i+1)
		}
	}
	var order []string
	for _, rec := range pub.Accepted() {
		m := rec.Msg
		order = append(order, m.UUID)
		if rec.Topic != "reliamq_retry_g_h" || m.Metadata.Get(metadata.ReconsumeTimes) != "1" || m.Metadata.Get(redelivery.RedeliveryCount) != "1" {
			t.Fatalf("published %s to %s with %v", m.UUID, rec.Topic, m.Metadata)
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
	r, err := redelivery.New(redelivery.Config{ConsumerGroup: "g", Handler: "h", Scheduler: redelivery.NewInMemory(redelivery.InMemoryConfig{}),
		Publisher: &fakepub.Publisher{}, Policy: policy.Policy{MaxAttempts: 5, Backoff: policy.Fixed(time.Hour)}}, nil)
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
	r := newMemory(t, redelivery.Config{DeadLetterPublisher: &fakepub.Publisher{Err: errPub}})
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
