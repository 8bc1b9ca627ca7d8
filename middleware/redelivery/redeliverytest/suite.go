// Package redeliverytest is the conformance suite of middleware/redelivery:
// the same behaviours, checked on every backend. A backend package runs it
// from a test with a constructor and its Features, the way Watermill's
// pubsub/tests.TestPubSub is run.
//
// The suite uses the real clock with short policies (tens of milliseconds),
// so it runs in seconds; the exact RocketMQ schedule is proved separately
// with a fake clock.
package redeliverytest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// Features says what the backend under test guarantees.
type Features struct {
	// ConsumerGroups is true when two subscribers of different consumer
	// groups on one topic each receive every message. Enables the isolation
	// test.
	ConsumerGroups bool
	// Durable is true when waiting messages survive a consumer restart
	// (the Durable scheduler, RocketMQ's NativeScheduler). Enables the
	// restart test.
	Durable bool
	// Native is true when the scheduler routes BySubscriber (RocketMQ's
	// NativeScheduler): redelivery delays come from the broker's
	// delay levels, so the suite does not check them against the policy.
	Native bool
	// HeadOfLineMessages is how many healthy messages surround the poisoned one
	// in the head-of-line test. Default 10,000; at most 1,000 under -short.
	HeadOfLineMessages int
	// RestartMessages is how many messages wait during the restart test.
	// Default 100.
	RestartMessages int
	// RestartDelay is the first retry delay in the restart test; it must
	// exceed the time to stop and start a consumer. Default 2s.
	RestartDelay time.Duration
	// Timeout bounds every wait. Default 60s.
	Timeout time.Duration
}

func (f *Features) setDefaults() {
	if f.HeadOfLineMessages == 0 {
		f.HeadOfLineMessages = 10000
	}
	// The race pass (-short) repeats the suite; the full count runs without it.
	if testing.Short() && f.HeadOfLineMessages > 1000 {
		f.HeadOfLineMessages = 1000
	}
	if f.RestartMessages == 0 {
		f.RestartMessages = 100
	}
	if f.RestartDelay == 0 {
		f.RestartDelay = 2 * time.Second
	}
	if f.Timeout == 0 {
		f.Timeout = 60 * time.Second
	}
}

// Backend builds the pub/sub under test.
type Backend struct {
	// NewPubSub returns a publisher and a subscriber that consumes as the
	// consumer group. The suite calls it once per consumer (several per test,
	// and again for a restarted consumer); the router closes the subscriber
	// when the consumer stops. The backend closes the rest in t.Cleanup.
	NewPubSub func(t *testing.T, group string) (message.Publisher, message.Subscriber)
	// Configure sets the Scheduler of a Redelivery config, a new one per
	// call (one scheduler serves one Redelivery). Consumers of one test (a
	// restarted consumer, in particular) must share the same store: see
	// PerTest.
	Configure func(t *testing.T, cfg *redelivery.Config)
	// ReplayRetryTopic, when set, names the topic that reaches only the
	// handler of group consuming topic, for replaying dead letters that carry
	// none (RocketMQ's NativeScheduler: "%RETRY%" + the RocketMQ group).
	ReplayRetryTopic func(group, topic string) string
}

// PerTest returns a function that calls build once per test and returns the
// same value for every later call with that test.
func PerTest[T any](build func(t *testing.T) T) func(t *testing.T) T {
	var mu sync.Mutex
	m := map[*testing.T]T{}
	return func(t *testing.T) T {
		mu.Lock()
		defer mu.Unlock()
		if v, ok := m[t]; ok {
			return v
		}
		v := build(t)
		m[t] = v
		t.Cleanup(func() { mu.Lock(); delete(m, t); mu.Unlock() })
		return v
	}
}

// Run runs every conformance test as a subtest of t.
func Run(t *testing.T, f Features, b Backend) {
	f.setDefaults()
	s := &suite{f: f, b: b}
	s.producer = PerTest(func(t *testing.T) message.Publisher {
		pub, _ := b.NewPubSub(t, "producer")
		return pub
	})
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"retries_until_the_handler_succeeds_keeping_the_UUID", s.testRetriesUntilSuccess},
		{"dead_letters_after_the_last_attempt_with_metadata", s.testDeadLetter},
		{"verdicts_dead_letter_permanent_panic_retry_after", s.testVerdicts},
		{"broadcast_failures_are_never_retried", s.testBroadcast},
		{"a_poisoned_message_does_not_hold_up_healthy_ones", s.testHeadOfLine},
		{"retries_stay_in_the_failing_consumer_group", s.testGroupIsolation},
		{"replay_delivers_each_dead_letter_once_to_the_failed_group_only", s.testReplay},
		{"waiting_messages_survive_a_consumer_restart", s.testRestart},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	f        Features
	b        Backend
	producer func(t *testing.T) message.Publisher
}

func shortID() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:12] }

// delivery is one handler run.
type delivery struct {
	UUID      string
	Reconsume int
	At        time.Time
	Metadata  message.Metadata
}

func copyMetadata(md message.Metadata) message.Metadata {
	c := make(message.Metadata, len(md))
	for k, v := range md {
		c[k] = v
	}
	return c
}

// collector records deliveries by UUID and lets the test goroutine wait.
type collector struct {
	mu      sync.Mutex
	byUUID  map[string][]delivery
	total   int
	changed chan struct{}
}

func newCollector() *collector {
	return &collector{byUUID: map[string][]delivery{}, changed: make(chan struct{})}
}

func (c *collector) record(msg *message.Message) delivery {
	n, _ := strconv.Atoi(msg.Metadata.Get(metadata.ReconsumeTimes))
	d := delivery{UUID: msg.UUID, Reconsume: n, At: time.Now(), Metadata: copyMetadata(msg.Metadata)}
	c.mu.Lock()
	c.byUUID[msg.UUID] = append(c.byUUID[msg.UUID], d)
	c.total++
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	return d
}

func (c *collector) get(id string) []delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]delivery(nil), c.byUUID[id]...)
}

// waitFor blocks until cond (called under the lock) holds.
func (c *collector) waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		ok := cond()
		ch := c.changed
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// consumer is one running router with one Redelivery.
type consumer struct {
	r    *redelivery.Redelivery
	stop func()
}

// waitStats polls the consumer's stats until cond holds. A handler records a
// delivery before it returns, and the middleware counts the outcome only
// after, so stats lag what a collector has seen.
func (c *consumer) waitStats(t *testing.T, timeout time.Duration, what string, cond func(redelivery.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for st := c.r.Stats(); !cond(st); st = c.r.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want %s", st, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *suite) newConfig(group string, p policy.Policy) redelivery.Config {
	return redelivery.Config{ConsumerGroup: group, Handler: "h", Policy: p}
}

// start runs a consumer; adjust, when given, changes the config after the
// backend's Configure.
func (s *suite) start(t *testing.T, cfg redelivery.Config, topic string, h message.NoPublishHandlerFunc, adjust ...func(*redelivery.Config)) *consumer {
	t.Helper()
	pub, sub := s.b.NewPubSub(t, cfg.ConsumerGroup)
	if cfg.Publisher == nil {
		cfg.Publisher = pub
	}
	s.b.Configure(t, &cfg)
	for _, a := range adjust {
		a(&cfg)
	}
	r, err := redelivery.New(cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddConsumerHandler(router, topic, sub, h); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = router.Run(ctx) }()
	select {
	case <-router.Running():
	case <-done:
		t.Fatal("router stopped before running")
	case <-time.After(s.f.Timeout):
		t.Fatal("router did not start")
	}
	var once sync.Once
	c := &consumer{r: r, stop: func() {
		once.Do(func() {
			_ = router.Close()
			cancel()
			<-done
			_ = r.Close()
		})
	}}
	t.Cleanup(c.stop)
	return c
}

// deadLetters subscribes to the dead-letter topic of group before anything is
// dead-lettered, and returns the messages by UUID through a collector (acked).
func (s *suite) deadLetters(t *testing.T, group string) *collector {
	t.Helper()
	dlq := newCollector()
	_, sub := s.b.NewPubSub(t, "dlq"+group)
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, redelivery.DefaultDeadLetterTopic(group))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range msgs {
			dlq.record(m)
			m.Ack()
		}
	}()
	t.Cleanup(func() { cancel(); _ = sub.Close(); <-done })
	return dlq
}

func (s *suite) publish(t *testing.T, topic string, msgs ...*message.Message) {
	t.Helper()
	pub := s.producer(t)
	const batch = 500
	for i := 0; i < len(msgs); i += batch {
		if err := pub.Publish(topic, msgs[i:min(i+batch, len(msgs))]...); err != nil {
			t.Fatal(err)
		}
	}
}

func newMessages(n int, prefix string) []*message.Message {
	out := make([]*message.Message, n)
	for i := range out {
		out[i] = message.NewMessage(fmt.Sprintf("%s-%d-%s", prefix, i, shortID()), payload(prefix))
	}
	return out
}

// payload is a JSON string: watermill-sql stores payloads in JSON columns.
func payload(kind string) []byte { return []byte(strconv.Quote(kind)) }

func kindOf(msg *message.Message) string {
	k, _ := strconv.Unquote(string(msg.Payload))
	return k
}

func fastPolicy(attempts int, delays ...time.Duration) policy.Policy {
	p := policy.Policy{MaxAttempts: attempts}
	if len(delays) > 0 {
		p.Backoff = policy.Table(delays...)
	}
	return p
}

func (s *suite) testRetriesUntilSuccess(t *testing.T) {
	group, topic := "g"+shortID(), "rq_"+shortID()
	got := newCollector()
	delays := []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	s.start(t, s.newConfig(group, fastPolicy(5, delays...)), topic, func(msg *message.Message) error {
		if d := got.record(msg); d.Reconsume < 2 {
			return fmt.Errorf("attempt %d failed", d.Reconsume)
		}
		return nil
	})
	sent := newMessages(3, "retry")
	for _, m := range sent {
		m.Metadata.Set("tenant", "acme")
	}
	s.publish(t, topic, sent...)
	got.waitFor(t, s.f.Timeout, "3 messages to succeed on their 3rd delivery", func() bool {
		for _, m := range sent {
			if d := got.byUUID[m.UUID]; len(d) < 3 {
				return false
			}
		}
		return true
	})
	for _, m := range sent {
		ds := got.get(m.UUID)
		for i, d := range ds {
			if d.Reconsume != i {
				t.Fatalf("%s: delivery %d has reconsume count %d, want %d (duplicates or gaps)", m.UUID, i, d.Reconsume, i)
			}
			if d.Metadata.Get("tenant") != "acme" {
				t.Fatalf("%s: delivery %d lost user metadata", m.UUID, i)
			}
			if i == 0 {
				continue
			}
			want := map[string]string{
				metadata.OriginalUUID:  m.UUID,
				metadata.ConsumerGroup: group,
				metadata.LastError:     fmt.Sprintf("attempt %d failed", i-1),
			}
			if s.f.Native {
				want = map[string]string{} // the broker resends the stored message
			}
			for k, v := range want {
				if d.Metadata.Get(k) != v {
					t.Fatalf("%s: delivery %d metadata %s = %q, want %q", m.UUID, i, k, d.Metadata.Get(k), v)
				}
			}
			if !s.f.Native {
				if _, err := time.Parse(time.RFC3339Nano, d.Metadata.Get(metadata.FirstFailureTime)); err != nil {
					t.Fatalf("%s: first failure time: %v", m.UUID, err)
				}
				if gap := d.At.Sub(ds[i-1].At); gap < delays[i-1] {
					t.Fatalf("%s: retry %d came %v after the failure, before its delay %v", m.UUID, i, gap, delays[i-1])
				}
			}
		}
	}
}

func (s *suite) testDeadLetter(t *testing.T) {
	group, topic := "g"+shortID(), "rq_"+shortID()
	dlq := s.deadLetters(t, group)
	got := newCollector()
	handlerErr := errors.New("always fails")
	s.start(t, s.newConfig(group, fastPolicy(3, 20*time.Millisecond)), topic, func(msg *message.Message) error {
		got.record(msg)
		return handlerErr
	})
	sent := newMessages(2, "dlq")
	s.publish(t, topic, sent...)
	dlq.waitFor(t, s.f.Timeout, "2 dead letters", func() bool { return dlq.total >= 2 })
	for _, m := range sent {
		dl := dlq.get(m.UUID)
		if len(dl) != 1 {
			t.Fatalf("%s: %d dead letters, want 1", m.UUID, len(dl))
		}
		want := map[string]string{
			metadata.DeadLetterReason: redelivery.ReasonMaxAttempts,
			metadata.Attempts:         "3",
			// Not metadata.ReconsumeTimes: a subscriber of the dead-letter
			// topic may set it to its own count.
			redelivery.RedeliveryCount: "2",
			metadata.OriginalTopic:     topic,
			metadata.Handler:           "h",
			metadata.ConsumerGroup:     group,
			metadata.OriginalUUID:      m.UUID,
			metadata.LastError:         handlerErr.Error(),
		}
		for k, v := range want {
			if dl[0].Metadata.Get(k) != v {
				t.Errorf("%s: DLQ metadata %s = %q, want %q", m.UUID, k, dl[0].Metadata.Get(k), v)
			}
		}
		var counts []int
		for _, d := range got.get(m.UUID) {
			counts = append(counts, d.Reconsume)
		}
		if fmt.Sprint(counts) != "[0 1 2]" {
			t.Errorf("%s: reconsume counts %v, want [0 1 2]", m.UUID, counts)
		}
	}
}

func (s *suite) testVerdicts(t *testing.T) {
	group, topic := "g"+shortID(), "rq_"+shortID()
	dlq := s.deadLetters(t, group)
	got := newCollector()
	s.start(t, s.newConfig(group, fastPolicy(2, 20*time.Millisecond)), topic, func(msg *message.Message) error {
		d := got.record(msg)
		switch kindOf(msg) {
		case "deadletter":
			return redelivery.DeadLetter("invalid order")
		case "permanent":
			return policy.Permanent(errors.New("unknown customer"))
		case "panic":
			panic("nil map")
		case "retryafter":
			if d.Reconsume == 0 {
				return redelivery.RetryAfter(30 * time.Millisecond)
			}
		}
		return nil
	})
	kinds := []string{"deadletter", "permanent", "panic", "retryafter"}
	sent := map[string]*message.Message{}
	var all []*message.Message
	for _, k := range kinds {
		m := message.NewMessage(k+"-"+shortID(), payload(k))
		sent[k] = m
		all = append(all, m)
	}
	s.publish(t, topic, all...)
	dlq.waitFor(t, s.f.Timeout, "3 dead letters", func() bool { return dlq.total >= 3 })
	got.waitFor(t, s.f.Timeout, "RetryAfter message to succeed", func() bool { return len(got.byUUID[sent["retryafter"].UUID]) >= 2 })
	want := map[string]struct {
		reason, attempts string
		deliveries       int
	}{
		"deadletter": {redelivery.ReasonVerdict, "1", 1},
		"permanent":  {redelivery.ReasonPermanent, "1", 1},
		"panic":      {redelivery.ReasonMaxAttempts, "2", 2},
	}
	for k, w := range want {
		dl := dlq.get(sent[k].UUID)
		if len(dl) != 1 {
			t.Fatalf("%s: %d dead letters, want 1", k, len(dl))
		}
		if r, a := dl[0].Metadata.Get(metadata.DeadLetterReason), dl[0].Metadata.Get(metadata.Attempts); r != w.reason || a != w.attempts {
			t.Errorf("%s: reason %q attempts %s, want %q %s", k, r, a, w.reason, w.attempts)
		}
		if n := len(got.get(sent[k].UUID)); n != w.deliveries {
			t.Errorf("%s: %d deliveries, want %d", k, n, w.deliveries)
		}
	}
	if st := dlq.get(sent["panic"].UUID)[0].Metadata.Get(metadata.PanicStack); !strings.Contains(st, "goroutine") {
		t.Errorf("panic dead letter has no stack: %q", st)
	}
	if n := len(dlq.get(sent["retryafter"].UUID)); n != 0 {
		t.Errorf("RetryAfter message dead-lettered")
	}
}

func (s *suite) testBroadcast(t *testing.T) {
	group, topic := "g"+shortID(), "rq_"+shortID()
	got := newCollector()
	cfg := s.newConfig(group, fastPolicy(5, 10*time.Millisecond))
	cfg.Broadcast = true
	c := s.start(t, cfg, topic, func(msg *message.Message) error {
		got.record(msg)
		return errors.New("fails")
	})
	sent := newMessages(5, "bcast")
	s.publish(t, topic, sent...)
	c.waitStats(t, s.f.Timeout, "5 dropped", func(st redelivery.Stats) bool { return st.Dropped >= 5 })
	if st := c.r.Stats(); st.Scheduled != 0 || st.DeadLettered != 0 || st.Failed != 5 {
		t.Fatalf("stats %+v: want 5 failed, none scheduled nor dead-lettered", st)
	}
	for _, m := range sent {
		if n := len(got.get(m.UUID)); n != 1 {
			t.Fatalf("%s delivered %d times, want 1", m.UUID, n)
		}
	}
}

func (s *suite) testHeadOfLine(t *testing.T) {
	group, topic := "g"+shortID(), "rq_"+shortID()
	got := newCollector()
	// The poisoned message waits an hour for its second attempt: the healthy
	// ones must all finish meanwhile.
	c := s.start(t, s.newConfig(group, fastPolicy(3, time.Hour)), topic, func(msg *message.Message) error {
		got.record(msg)
		if kindOf(msg) == "poison" {
			return errors.New("poisoned")
		}
		return nil
	})
	n := s.f.HeadOfLineMessages
	healthy := newMessages(n, "ok")
	poison := message.NewMessage("poison-"+shortID(), payload("poison"))
	msgs := append([]*message.Message{healthy[0], poison}, healthy[1:]...)
	s.publish(t, topic, msgs...)
	got.waitFor(t, s.f.Timeout, fmt.Sprintf("%d healthy messages", n), func() bool { return got.total >= n+1 })
	lost, dup := 0, 0
	for _, m := range healthy {
		switch k := len(got.get(m.UUID)); {
		case k == 0:
			lost++
		case k > 1:
			dup += k - 1
		}
	}
	t.Logf("sent %d healthy + 1 poisoned; lost %d, duplicated %d", n, lost, dup)
	if lost != 0 {
		t.Fatalf("lost %d healthy messages", lost)
	}
	if p := got.get(poison.UUID); len(p) != 1 || p[0].Reconsume != 0 {
		t.Fatalf("poisoned message delivered %d times, want once (waiting for its 2nd attempt)", len(p))
	}
	c.waitStats(t, s.f.Timeout, fmt.Sprintf("%d succeeded, 1 scheduled", n), func(st redelivery.Stats) bool {
		return st.Succeeded >= uint64(n) && st.Scheduled >= 1
	})
	if st := c.r.Stats(); st.Scheduled != 1 || st.Succeeded < uint64(n) {
		t.Fatalf("stats %+v: want %d succeeded, 1 scheduled", st, n)
	}
}

func (s *suite) testGroupIsolation(t *testing.T) {
	if !s.f.ConsumerGroups {
		t.Skip("backend has no consumer groups")
	}
	groupA, groupB, topic := "ga"+shortID(), "gb"+shortID(), "rq_"+shortID()
	gotA, gotB := newCollector(), newCollector()
	s.start(t, s.newConfig(groupA, fastPolicy(3, 20*time.Millisecond)), topic, func(msg *message.Message) error {
		if d := gotA.record(msg); d.Reconsume == 0 {
			return errors.New("group A fails once")
		}
		return nil
	})
	b := s.start(t, s.newConfig(groupB, fastPolicy(3, 20*time.Millisecond)), topic, func(msg *message.Message) error {
		gotB.record(msg)
		return nil
	})
	sent := newMessages(5, "iso")
	s.publish(t, topic, sent...)
	gotA.waitFor(t, s.f.Timeout, "group A to see every retry", func() bool { return gotA.total >= 10 })
	gotB.waitFor(t, s.f.Timeout, "group B to see every message", func() bool { return gotB.total >= 5 })
	for _, m := range sent {
		ds := gotB.get(m.UUID)
		if len(ds) != 1 || ds[0].Reconsume != 0 {
			t.Fatalf("group B saw %s %d times (%+v), want once with count 0", m.UUID, len(ds), ds)
		}
		if n := len(gotA.get(m.UUID)); n != 2 {
			t.Fatalf("group A saw %s %d times, want 2", m.UUID, n)
		}
	}
	b.waitStats(t, s.f.Timeout, "group B: 5 succeeded", func(st redelivery.Stats) bool { return st.Succeeded >= 5 })
	if st := b.r.Stats(); st.Scheduled != 0 || st.Failed != 0 || st.Succeeded != 5 {
		t.Fatalf("group B stats %+v", st)
	}
}

func (s *suite) testReplay(t *testing.T) {
	group, topic := "g"+shortID(), "rq_"+shortID()
	// Subscribe to the dead-letter topic before anything lands there.
	_, dlqSub := s.b.NewPubSub(t, "replay"+group)
	ctx, cancel := context.WithTimeout(context.Background(), s.f.Timeout)
	defer cancel()
	dlqMsgs, err := dlqSub.Subscribe(ctx, redelivery.DefaultDeadLetterTopic(group))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dlqSub.Close() })
	// Buffer the dead letters (acking them at once) so that Replay runs after
	// every message was dead-lettered, as an operator would run it: a serial
	// backend would otherwise make the consumer's dead-letter publish wait for
	// Replay, and Replay's publish wait for the consumer.
	// A message fails until it was dead-lettered, then succeeds: if a
	// dead-letter publish fails (a timeout on a loaded machine), the message is
	// redelivered and fails again instead of being handled without reaching
	// the dead-letter topic. A dead letter that arrives twice (its ack was
	// lost) is replayed once.
	var mu sync.Mutex
	deadLettered := map[string]bool{}
	replays := map[string][]delivery{}
	buffered := make(chan *message.Message, 100)
	go func() {
		for m := range dlqMsgs {
			c := message.NewMessage(m.UUID, m.Payload)
			for k, v := range m.Metadata {
				c.Metadata[k] = v
			}
			mu.Lock()
			first := !deadLettered[m.UUID]
			deadLettered[m.UUID] = true
			mu.Unlock()
			m.Ack()
			if first {
				buffered <- c
			}
		}
	}()
	// Another group consumes the same topic and never fails: the replay is
	// not for it, so it sees each message once.
	other := newCollector()
	if s.f.ConsumerGroups {
		s.start(t, s.newConfig("o"+group, fastPolicy(1)), topic, func(msg *message.Message) error {
			other.record(msg)
			return nil
		})
	}
	got := newCollector()
	s.start(t, s.newConfig(group, fastPolicy(1)), topic, func(msg *message.Message) error {
		mu.Lock()
		replayed := deadLettered[msg.UUID]
		if replayed {
			n, _ := strconv.Atoi(msg.Metadata.Get(metadata.ReconsumeTimes))
			replays[msg.UUID] = append(replays[msg.UUID], delivery{UUID: msg.UUID, Reconsume: n, Metadata: copyMetadata(msg.Metadata)})
		}
		mu.Unlock()
		got.record(msg) // after replays, so that a wait on got sees it
		if !replayed {
			return errors.New("fails until dead-lettered; no retries allowed")
		}
		return nil
	})
	sent := newMessages(5, "replay")
	pub, _ := s.b.NewPubSub(t, "replayer")
	type outcome struct {
		stats   redelivery.ReplayStats
		results []redelivery.ReplayResult
		err     error
	}
	s.publish(t, topic, sent...)
	got.waitFor(t, s.f.Timeout, "every first delivery", func() bool { return got.total >= len(sent) })
	var o outcome
	var retryTopic string
	if s.b.ReplayRetryTopic != nil {
		retryTopic = s.b.ReplayRetryTopic(group, topic)
	}
	o.stats, o.err = redelivery.Replay(ctx, redelivery.ReplayConfig{
		Messages: buffered, Publisher: pub, Limit: len(sent), Rate: 1000, IdleTimeout: -1, RetryTopic: retryTopic,
		Hooks: []any{replayedFunc(func(r redelivery.ReplayResult) { o.results = append(o.results, r) })},
	}, nil)
	if o.err != nil || o.stats.Replayed != len(sent) || len(o.results) != len(sent) {
		t.Fatalf("replay: %+v, %v", o.stats, o.err)
	}
	for _, r := range o.results {
		if r.Err != nil || r.OriginalTopic != topic || r.Topic == topic || r.Reason != redelivery.ReasonMaxAttempts {
			t.Fatalf("replay result %+v", r)
		}
	}
	got.waitFor(t, s.f.Timeout, "every replayed message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range sent {
			if len(replays[m.UUID]) == 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for _, m := range sent {
		rs := replays[m.UUID]
		if len(rs) != 1 {
			t.Fatalf("%s delivered %d times after it was dead-lettered, want once (the replay)", m.UUID, len(rs))
		}
		if rs[0].Reconsume != 0 || rs[0].Metadata.Get(metadata.DeadLetterReason) != "" || rs[0].Metadata.Get(metadata.RetryTopic) != "" {
			t.Fatalf("%s replayed with count %d, reason %q and retry topic %q, want a reset count and no DLQ facts",
				m.UUID, rs[0].Reconsume, rs[0].Metadata.Get(metadata.DeadLetterReason), rs[0].Metadata.Get(metadata.RetryTopic))
		}
	}
	if !s.f.ConsumerGroups {
		return
	}
	other.waitFor(t, s.f.Timeout, "the other group to see every message", func() bool { return other.total >= len(sent) })
	// A replay to the original topic would reach the other group about when
	// it reached the failed one, which has happened: give it a moment more.
	time.Sleep(time.Second)
	for _, m := range sent {
		if n := len(other.get(m.UUID)); n != 1 {
			t.Fatalf("the other group saw %s %d times, want once: the replay reached it", m.UUID, n)
		}
	}
}

func (s *suite) testRestart(t *testing.T) {
	if !s.f.Durable {
		t.Skip("waiting messages do not survive a restart on this backend")
	}
	group, topic := "g"+shortID(), "rq_"+shortID()
	n := s.f.RestartMessages
	delay := s.f.RestartDelay
	got := newCollector()
	handler := func(msg *message.Message) error {
		if d := got.record(msg); d.Reconsume == 0 {
			return errors.New("fails before the restart")
		}
		return nil
	}
	// The first consumer never polls its store again after starting, so no
	// message can be redelivered before the restart however slow the machine
	// is: every one of them waits across it.
	first := s.start(t, s.newConfig(group, fastPolicy(3, delay)), topic, handler, func(c *redelivery.Config) {
		if d, ok := c.Scheduler.(*redelivery.Durable); ok {
			dc := d.Config()
			dc.PollInterval = time.Hour
			c.Scheduler = redelivery.NewDurable(dc)
		}
	})
	sent := newMessages(n, "restart")
	s.publish(t, topic, sent...)
	first.waitStats(t, s.f.Timeout, fmt.Sprintf("%d scheduled", n), func(st redelivery.Stats) bool { return st.Scheduled >= uint64(n) })
	first.stop()
	stoppedAt := time.Now()
	s.start(t, s.newConfig(group, fastPolicy(3, delay)), topic, handler)
	got.waitFor(t, s.f.Timeout, "every waiting message after the restart", func() bool {
		for _, m := range sent {
			ok := false
			for _, d := range got.byUUID[m.UUID] {
				ok = ok || d.Reconsume == 1
			}
			if !ok {
				return false
			}
		}
		return true
	})
	lost, dup := 0, 0
	for _, m := range sent {
		var retries []delivery
		for _, d := range got.get(m.UUID) {
			if d.Reconsume == 1 {
				retries = append(retries, d)
			}
		}
		switch {
		case len(retries) == 0:
			lost++
			continue
		case len(retries) > 1:
			dup += len(retries) - 1
		}
		r := retries[0]
		if !r.At.After(stoppedAt) {
			t.Fatalf("%s redelivered before the restart", m.UUID)
		}
		if !s.f.Native {
			ff, err := time.Parse(time.RFC3339Nano, r.Metadata.Get(metadata.FirstFailureTime))
			if err != nil {
				t.Fatal(err)
			}
			if r.At.Before(ff.Add(delay)) {
				t.Fatalf("%s redelivered %v after its failure, before its delay %v", m.UUID, r.At.Sub(ff), delay)
			}
		}
	}
	t.Logf("restart: sent %d, redelivered %d, lost %d, duplicated %d", n, n-lost, lost, dup)
	if lost != 0 {
		t.Fatalf("lost %d waiting messages across the restart", lost)
	}
}

// replayedFunc is a ReplayedHook.
type replayedFunc func(redelivery.ReplayResult)

func (f replayedFunc) OnReplayed(r redelivery.ReplayResult) { f(r) }
