//go:build !race

package brokersuite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

func newRetry(t *testing.T, inner message.Publisher) *retry.Publisher {
	t.Helper()
	p, err := retry.NewPublisher(inner, retry.Config{Policy: policy.Policy{MaxAttempts: 3,
		Backoff: policy.Exponential(10*time.Millisecond, 2, 100*time.Millisecond)}}, testLogger())
	if err != nil {
		t.Fatalf("retry publisher: %v", err)
	}
	return p
}

// The seed scenario's publish path, fallback(retry(rocketmq)), through an
// outage: every broker of the target is stopped (gracefully) and started
// again on the same store. Messages published while the brokers are down are
// stored in SQLite and the relay sends them once the brokers are back; the
// consumer counts by UUID and nothing may be lost.
//
// Not parallel: it takes the real clusters exclusively and runs before the
// parallel tests of this package.
func TestOutage_fallback_stores_while_the_brokers_are_down_and_the_relay_delivers_every_message(t *testing.T) {
	eachTargetExclusive(t, func(t *testing.T, tg *target) {
		const perPhase = 20
		st := sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{})
		fb, err := fallback.NewPublisher(newRetry(t, newPublisher(t, tg, rocketmq.PublisherConfig{SendTimeout: 2 * time.Second})),
			fallback.Config{Store: st}, testLogger())
		if err != nil {
			t.Fatalf("fallback publisher: %v", err)
		}
		relaySender := newRetry(t, newPublisher(t, tg, rocketmq.PublisherConfig{SendTimeout: 2 * time.Second}))
		topic := unique("outage")
		sub := newSubscriber(t, tg, rocketmq.SubscriberConfig{})
		l := newLedger()
		consumeInto(subscribe(t, sub, topic), l)

		relay, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: relaySender,
			PollInterval: 100 * time.Millisecond, OutageBackoff: policy.Fixed(500 * time.Millisecond)}, testLogger())
		if err != nil {
			t.Fatalf("relay: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		relayDone := make(chan error, 1)
		go func() { relayDone <- relay.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-relayDone; err != nil {
				t.Errorf("relay Run: %v", err)
			}
		})

		send := func(phase string) {
			t.Helper()
			for i := range perPhase {
				m := newMessage(fmt.Sprint(phase, "-", i), nil)
				l.markSentAs(m.UUID, string(m.Payload))
				if err := fb.Publish(topic, m); err != nil {
					t.Fatalf("Publish %s %d: %v", phase, i, err)
				}
			}
		}

		send("before")
		l.waitDelivered(t, 60*time.Second)

		start := time.Now()
		tg.stopBrokers(t)
		stopped := time.Since(start)
		storedBefore := fb.Stats().Stored
		send("during")
		if stored := fb.Stats().Stored - storedBefore; stored != perPhase {
			t.Errorf("stored %d of the %d messages published while the brokers were down", stored, perPhase)
		}

		start = time.Now()
		tg.startBrokers(t)
		started := time.Since(start)
		back := time.Now()
		send("after")
		c, ok := l.waitFor(3 * time.Minute)
		caughtUp := time.Since(back)
		if !ok {
			s, _ := st.Stats(context.Background(), "")
			rs, _ := relay.Stats(context.Background())
			var poisoned []string
			rows, _ := st.List(context.Background(), queue.Filter{Queue: "poison"})
			for _, r := range rows {
				poisoned = append(poisoned, fmt.Sprintf("%s: %s", r.Payload, r.LastError))
			}
			t.Fatalf("%v after %v (lost: %s); fallback %+v; store %+v; relay %+v; poisoned rows %q",
				c, caughtUp.Round(time.Millisecond), l.lostLabels(), fb.Stats(), s, rs, poisoned)
		}

		deadline := time.Now().Add(30 * time.Second)
		for {
			s, err := st.Stats(context.Background(), "")
			if err != nil {
				t.Fatalf("store stats: %v", err)
			}
			if s.Backlog == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("store still holds %d rows after every message was delivered", s.Backlog)
			}
			time.Sleep(50 * time.Millisecond)
		}
		rs, _ := relay.Stats(context.Background())
		t.Logf("%s: %v; stop %v, start %v, all delivered %v after the start; fallback %+v; relay %+v",
			tg.name, c, stopped.Round(time.Millisecond), started.Round(time.Millisecond),
			caughtUp.Round(time.Millisecond), fb.Stats(), rs)
		if c.lost != 0 || c.unknown != 0 {
			t.Errorf("%v, want nothing lost and nothing unknown", c)
		}
	})
}
