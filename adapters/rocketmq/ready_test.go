//go:build !race

package rocketmq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

func TestSubscriber_WaitReady_returns_once_the_subscription_has_its_queues(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{NewGroupOffset: rocketmqtest.NewGroupOffsetNotFound})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	// A group that starts after the newest message: what is published
	// before it has queues is not delivered, so readiness matters.
	if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("before"))); err != nil {
		t.Fatal(err)
	}
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumeFrom: rocketmq.ConsumeFromLastOffset})
	if err := sub.WaitReady(context.Background(), topic); !errors.Is(err, rocketmq.ErrNotSubscribed) {
		t.Fatalf("WaitReady before Subscribe = %v; want ErrNotSubscribed", err)
	}
	msgs := subscribe(t, sub, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sub.WaitReady(ctx, topic); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	m := message.NewMessage(watermill.NewUUID(), []byte("after"))
	if err := pub.Publish(topic, m); err != nil {
		t.Fatal(err)
	}
	got := receive(t, msgs, 20*time.Second)
	got.Ack()
	if got.UUID != m.UUID {
		t.Fatalf("first delivery %s; want the message published after WaitReady (%s)", got.UUID, m.UUID)
	}
}

func TestSubscriber_WaitReady_returns_for_a_broadcasting_subscription(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("w"))); err != nil {
		t.Fatal(err)
	}
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{Broadcasting: true, InstanceName: "bc-" + watermill.NewShortUUID()})
	msgs := subscribe(t, sub, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := sub.WaitReady(ctx, topic); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	receive(t, msgs, 20*time.Second).Ack()
}

func TestSubscriber_started_during_an_outage_consumes_after_it_and_logs_each_client_error_once(t *testing.T) {
	logger := watermill.NewCaptureLogger()
	rocketmq.RouteClientLogs(logger, rocketmq.ClientLogError)
	t.Cleanup(func() { rocketmq.RouteClientLogs(nil, rocketmq.ClientLogError) })

	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	running, late := newTopic(), newTopic()
	for _, topic := range []string{running, late} {
		if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte("w"))); err != nil {
			t.Fatal(err)
		}
	}
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{})
	runningMsgs := subscribe(t, sub, running)
	receive(t, runningMsgs, 20*time.Second).Ack()

	// The outage: name server and broker (one process) down for 4 s, while
	// the publisher, a running subscription and a new Subscribe keep
	// trying.
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	outage := time.Now()
	restart := time.AfterFunc(4*time.Second, func() { _ = b.Restart() })
	defer restart.Stop()
	for i := 0; i < 10; i++ {
		_ = pub.Publish(running, message.NewMessage(watermill.NewUUID(), []byte("lost?")))
	}
	var lateMsgs <-chan *message.Message
	for {
		ms, err := sub.Subscribe(context.Background(), late)
		if err == nil {
			lateMsgs = ms
			break
		}
		if !errors.Is(err, rocketmq.ErrBrokerUnavailable) {
			t.Fatalf("Subscribe during the outage = %v; want ErrBrokerUnavailable", err)
		}
		if time.Since(outage) > 30*time.Second {
			t.Fatalf("Subscribe still failing 30 s after the outage began: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	back := time.Since(outage)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sub.WaitReady(ctx, late); err != nil {
		t.Fatalf("WaitReady after the outage: %v", err)
	}
	ready := time.Since(outage)
	l := newLedger()
	for _, topic := range []string{running, late} {
		m := message.NewMessage(watermill.NewUUID(), []byte("after"))
		if err := pub.Publish(topic, m); err != nil {
			t.Fatalf("publish after the outage: %v", err)
		}
		l.markSent(m.UUID)
	}
	deadline := time.After(30 * time.Second)
	took := map[string]time.Duration{}
	for {
		if _, n, _, _ := l.counts(); n == 2 {
			break
		}
		select {
		case m := <-runningMsgs:
			l.markDelivered(m.UUID)
			took["running subscription"] = time.Since(outage)
			m.Ack()
		case m := <-lateMsgs:
			l.markDelivered(m.UUID)
			took["subscription started during it"] = time.Since(outage)
			m.Ack()
		case <-deadline:
			sent, got, _, lost := l.counts()
			t.Fatalf("after the outage: sent %d, delivered %d, lost %d within 30 s", sent, got, lost)
		}
	}
	t.Logf("outage 4 s: Subscribe succeeded %.1fs, ready %.1fs after it began; delivered after it began: %v",
		back.Seconds(), ready.Seconds(), took)
	// A generous bound on the mechanism (routes are read every second),
	// not a speed assertion: a pull the client had parked on the broker
	// waits out its 30 s timeout otherwise.
	for what, d := range took {
		if d > 15*time.Second {
			t.Errorf("%s: message published after the outage delivered %.1fs after it began; want within 15 s", what, d.Seconds())
		}
	}

	// Every client error line went out at most twice in this time: once,
	// then once per 10 s interval with its count.
	perMsg := map[string]int{}
	for _, e := range logger.Captured()[watermill.ErrorLogLevel] {
		perMsg[e.Msg]++
	}
	limit := 1 + int(time.Since(outage)/rocketmq.DefaultClientLogInterval)
	for msg, n := range perMsg {
		t.Logf("client error %q: %d line(s)", msg, n)
		if n > limit {
			t.Errorf("client error %q logged %d times in %.0fs; want at most %d", msg, n, time.Since(outage).Seconds(), limit)
		}
	}
}
