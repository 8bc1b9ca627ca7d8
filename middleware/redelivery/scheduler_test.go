package redelivery_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// topicScheduler is a custom scheduler that routes ByRetryTopic: it keeps
// what it is given and answers Schedule with err.
type topicScheduler struct {
	mu     sync.Mutex
	target redelivery.Target
	got    []redelivery.Scheduled
	err    error
	closed int
}

func (s *topicScheduler) Route() redelivery.Route { return redelivery.ByRetryTopic }

func (s *topicScheduler) Open(t redelivery.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target = t
	return nil
}

func (s *topicScheduler) Schedule(_ context.Context, sc redelivery.Scheduled) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, sc)
	return sc.Delay, s.err
}

func (s *topicScheduler) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed++
	return nil
}

// A scheduler gets everything from Open's Target and from Schedule: the
// retry topic and its publisher, the queue name, a Ready channel that Start
// closes, and a copy of the failed message made for the retry topic.
func TestA_custom_scheduler_gets_its_target_at_New_and_a_copy_for_the_retry_topic_at_each_failure(t *testing.T) {
	fake := clocktest.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	pub := &fakepub.Publisher{}
	sched := &topicScheduler{}
	r, err := redelivery.New(redelivery.Config{ConsumerGroup: "billing", Handler: "charge", Publisher: pub,
		Scheduler: sched, Clock: fake, Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Minute)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tg := sched.target
	if tg.Publisher != pub || tg.RetryTopic != "reliamq_retry_billing_charge" || tg.Queue != "billing/charge" ||
		tg.ConsumerGroup != "billing" || tg.Handler != "charge" || tg.Clock != fake || tg.Logger == nil || tg.Observer == nil {
		t.Fatalf("target %+v", tg)
	}
	select {
	case <-tg.Ready:
		t.Fatal("Ready closed before Start")
	default:
	}
	r.Start()
	r.Start()
	select {
	case <-tg.Ready:
	default:
		t.Fatal("Ready still open after Start")
	}

	msg := message.NewMessage("m1", []byte("p"))
	msg.Metadata.Set("tenant", "acme")
	msg.Metadata.Set(metadata.DelayLevel, "3") // a per-delivery key: not copied
	h := r.Middleware(func(*message.Message) ([]*message.Message, error) { return nil, errors.New("declined") })
	if _, err := h(msg); err != nil {
		t.Fatalf("err = %v, want nil: the retry is scheduled, the delivery acked", err)
	}
	sc := sched.got[0]
	if sc.Message == msg || sc.Retry != 1 || sc.Delay != time.Minute || !sc.FailedAt.Equal(fake.Now()) ||
		!sc.Due().Equal(fake.Now().Add(time.Minute)) || sc.LastError != "declined" {
		t.Fatalf("scheduled %+v", sc)
	}
	md := sc.Message.Metadata
	for k, want := range map[string]string{
		"tenant": "acme", redelivery.RedeliveryCount: "1", metadata.ReconsumeTimes: "1", metadata.OriginalUUID: "m1",
		metadata.LastError: "declined", metadata.ConsumerGroup: "billing", metadata.Handler: "charge", metadata.DelayLevel: "",
	} {
		if md.Get(k) != want {
			t.Errorf("copy's %s = %q, want %q", k, md.Get(k), want)
		}
	}
	if sc.Message.UUID != "m1" || string(sc.Message.Payload) != "p" {
		t.Fatalf("copy %s %q", sc.Message.UUID, sc.Message.Payload)
	}

	// A scheduling error nacks the delivery; a permanent one dead-letters it.
	errStore := errors.New("store down")
	sched.err = errStore
	if _, err := h(message.NewMessage("m2", nil)); !errors.Is(err, errStore) {
		t.Fatalf("err = %v, want the scheduling error (nack)", err)
	}
	sched.err = policy.Permanent(errStore)
	if _, err := h(message.NewMessage("m3", nil)); err != nil {
		t.Fatalf("err = %v, want nil (dead-lettered)", err)
	}
	if dl := pub.Accepted(); len(dl) != 1 || dl[0].Msg.UUID != "m3" || dl[0].Msg.Metadata.Get(metadata.DeadLetterReason) != redelivery.ReasonPermanent {
		t.Fatalf("dead letters %v", dl)
	}
	if st := r.Stats(); st.Scheduled != 1 || st.DeadLettered != 1 {
		t.Fatalf("stats %+v", st)
	}
	_ = r.Close()
	_ = r.Close()
	if sched.closed != 1 {
		t.Fatalf("scheduler closed %d times, want once", sched.closed)
	}
}

// The Observer in the Target feeds Stats and the RedeliveredHooks.
func TestThe_target_Observer_feeds_Stats_and_RedeliveredHooks(t *testing.T) {
	sched := &topicScheduler{}
	hooks := newHookRecorder()
	r, err := redelivery.New(redelivery.Config{ConsumerGroup: "g", Handler: "h", Publisher: fakepub.Nop,
		Scheduler: sched, Hooks: []any{hooks}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	o := sched.target.Observer
	o.OnWaiting(3)
	o.OnRedelivered(redelivery.RedeliveredParams{MessageUUID: "a", Retry: 1})
	o.OnRedelivered(redelivery.RedeliveredParams{MessageUUID: "b", Err: errors.New("down")})
	o.OnWaiting(-1)
	o.OnLost(2)
	o.OnWaiting(-2)
	if st := r.Stats(); st.Redelivered != 1 || st.PublishFailures != 1 || st.Waiting != 0 || st.LostOnClose != 2 {
		t.Fatalf("stats %+v", st)
	}
	if p := recv(t, hooks.redelivered, "redelivered"); p.MessageUUID != "a" {
		t.Fatalf("first event %+v", p)
	}
	if p := recv(t, hooks.redelivered, "redelivered"); p.MessageUUID != "b" || p.Err == nil {
		t.Fatalf("second event %+v", p)
	}
}
