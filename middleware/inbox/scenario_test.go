package inbox_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/transporttest"
	"github.com/reliamq/reliamq/middleware/inbox"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/policy"
)

// transport is one backend the duplicate scenario runs on: a Watermill
// transport of the shared table (internal/transporttest) and the redelivery
// mode that fits it.
type transport struct {
	transporttest.Transport
	// configure sets the redelivery Scheduler.
	configure func(t *testing.T, cfg *redelivery.Config)
	// timeout bounds each wait.
	timeout time.Duration
}

// scenarioResult is what the duplicate scenario counted, by UUID.
type scenarioResult struct {
	sent       int
	effects    map[string]int // successful runs (SQL: committed effect rows)
	attempts   map[string]int // handler runs, failed ones included
	duplicates int
}

// runDuplicateScenario sends n messages through a router handler under
// redelivery and the inbox: half of them fail their first run (redelivered
// by redelivery), every message is published twice with the same UUID, and
// once everything is handled, all are published a third time (a replay).
// It returns the counts by UUID; each UUID must have exactly one effect.
func runDuplicateScenario(t *testing.T, tr transport, st store, n int) scenarioResult {
	t.Helper()
	group := "g" + strings.ReplaceAll(watermill.NewShortUUID(), "-", "")[:10]
	topic := "ib_" + strings.ReplaceAll(watermill.NewShortUUID(), "-", "")[:10]
	pub, sub := tr.NewPubSub(t, group)
	rcfg := redelivery.Config{ConsumerGroup: group, Handler: "h", Publisher: pub,
		Policy: policy.Policy{MaxAttempts: 5, Backoff: policy.Fixed(100 * time.Millisecond)}}
	tr.configure(t, &rcfg)
	rd, err := redelivery.New(rcfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	dups := &dupCounter{}
	ib := newInbox(t, inbox.Config{ConsumerGroup: group, Handler: "h", Store: st, Hooks: []any{dups}})
	var fx *effects
	if st.db != nil {
		fx = newEffects(t, st.db, st.dialect)
	}
	attempts, succeeded := newRuns(), newRuns()
	h := func(msg *message.Message) error {
		if attempts.add(msg.UUID) == 1 && strings.Contains(string(msg.Payload), "flaky") {
			return errors.New("flaky handler fails its first run")
		}
		if fx != nil {
			if err := fx.write(msg); err != nil {
				return err
			}
		}
		succeeded.add(msg.UUID)
		return nil
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.AddConsumerHandler(router, topic, sub, ib.ConsumerHandler(h)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() { _ = router.Close(); cancel(); <-done; _ = rd.Close() })
	}
	t.Cleanup(stop)
	select {
	case <-router.Running():
	case <-time.After(tr.timeout):
		t.Fatal("router did not start")
	}

	type sent struct{ uuid, payload string }
	var msgs []sent
	for i := range n {
		kind := `"good"` // JSON: watermill-sql's schemas store payloads as JSON
		if i%2 == 1 {
			kind = `"flaky"`
		}
		msgs = append(msgs, sent{watermill.NewUUID(), kind})
	}
	publishAll := func() {
		for _, m := range msgs {
			if err := pub.Publish(topic, message.NewMessage(m.uuid, []byte(m.payload))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Two copies of every message, then wait until each ran once.
	publishAll()
	publishAll()
	waitUntil(t, tr.timeout, "every message handled", func() bool { return ib.Stats().Processed >= int64(n) })
	// The replay: a third copy of every message, long after the first.
	publishAll()
	// Each UUID has 3 copies and exactly one successful run; every failed
	// run was redelivered once: so at least 2 duplicates per UUID.
	waitUntil(t, tr.timeout, "the copies acknowledged as duplicates", func() bool { return ib.Stats().Duplicates >= int64(2*n) })
	stop()

	res := scenarioResult{sent: n, attempts: attempts.snapshot(), duplicates: dups.total()}
	if fx != nil {
		res.effects = fx.byUUID(t)
	} else {
		res.effects = succeeded.snapshot()
	}
	for _, m := range msgs {
		if got := res.effects[m.uuid]; got != 1 {
			t.Errorf("%s (%s): %d effects; want exactly 1", m.uuid, m.payload, got)
		}
	}
	if len(res.effects) != n {
		t.Errorf("effects for %d UUIDs; want %d", len(res.effects), n)
	}
	t.Logf("%d UUIDs sent 3 times each: %d with one effect, %d duplicate copies acknowledged without running, %d handler runs in all",
		n, countOnes(res.effects), res.duplicates, sum(res.attempts))
	return res
}

func countOnes(m map[string]int) int {
	c := 0
	for _, v := range m {
		if v == 1 {
			c++
		}
	}
	return c
}

func sum(m map[string]int) int {
	s := 0
	for _, v := range m {
		s += v
	}
	return s
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
