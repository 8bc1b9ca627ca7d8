//go:build !race

package fallback_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

// sendCodes are the request codes the client uses for sends.
var sendCodes = []rocketmqtest.RequestCode{
	rocketmqtest.CodeSendMessage, rocketmqtest.CodeSendMessageV2, rocketmqtest.CodeSendBatchMessage,
}

func newBroker(t *testing.T, cfg rocketmqtest.Config) *rocketmqtest.Broker {
	t.Helper()
	if cfg.LongPollHold == 0 {
		cfg.LongPollHold = 200 * time.Millisecond
	}
	return rocketmqtest.NewTest(t, cfg)
}

func newRocketMQPublisher(t *testing.T, b *rocketmqtest.Broker) *rocketmq.Publisher {
	t.Helper()
	p, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{b.NameServerAddr()},
		SendTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatalf("rocketmq publisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func newRetry(t *testing.T, inner message.Publisher, attempts int) *retry.Publisher {
	t.Helper()
	p, err := retry.NewPublisher(inner, retry.Config{Policy: policy.Policy{MaxAttempts: attempts,
		Backoff: policy.Exponential(time.Millisecond, 2, 10*time.Millisecond)}}, nil)
	if err != nil {
		t.Fatalf("retry publisher: %v", err)
	}
	return p
}

// deliveries counts, by UUID, what a consumer group receives from a topic.
type deliveries struct {
	mu    sync.Mutex
	count map[string]int
	total int
}

func consume(t *testing.T, b *rocketmqtest.Broker, topic string) *deliveries {
	t.Helper()
	sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: []string{b.NameServerAddr()},
		ConsumerGroup: uniqueName("g"), CloseTimeout: 2 * time.Second}, watermill.NopLogger{})
	if err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		cancel()
		t.Fatalf("subscribe: %v", err)
	}
	d := &deliveries{count: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range msgs {
			d.mu.Lock()
			d.count[m.UUID]++
			d.total++
			d.mu.Unlock()
			m.Ack()
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = sub.Close()
		<-done
	})
	return d
}

// tally compares deliveries with the sent UUIDs.
func (d *deliveries) tally(sent []string) (delivered, lost, dupes int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return tally(sent, d.count)
}

func (d *deliveries) waitAll(t *testing.T, sent []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, lost, _ := d.tally(sent)
		if lost == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages not delivered after %v", lost, len(sent), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func runRelay(t *testing.T, cfg fallback.RelayConfig) *fallback.Relay {
	t.Helper()
	r, err := fallback.NewRelay(cfg, nil)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay run: %v", err)
		}
	})
	return r
}

func TestFallback_broker_down_then_up_every_message_is_stored_then_delivered(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000
	}
	b := newBroker(t, rocketmqtest.Config{})
	topic := uniqueName("down")
	st := newStore(t, postgresBackend, nil, nil)
	// The publish path of the seed service: async(fallback(retry(rocketmq))).
	fb, err := fallback.NewPublisher(newRetry(t, newRocketMQPublisher(t, b), 3), fallback.Config{Store: st}, nil)
	if err != nil {
		t.Fatalf("fallback publisher: %v", err)
	}
	leftovers, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: st})
	if err != nil {
		t.Fatalf("leftovers: %v", err)
	}
	var accepted, failed atomic.Int64
	var firstErr atomic.Value
	pub, err := async.NewPublisher(fb, async.Config{CoreWorkers: 10, MaxWorkers: 50, QueueCapacity: 200,
		Leftovers: leftovers, Hooks: []any{asyncResultFunc(func(r async.Result) {
			if r.Err != nil {
				failed.Add(int64(len(r.Messages)))
				firstErr.CompareAndSwap(nil, r.Err)
				return
			}
			accepted.Add(int64(len(r.Messages)))
		})}}, nil)
	if err != nil {
		t.Fatalf("async publisher: %v", err)
	}
	// The relay has its own sender: closing the publish path closes its chain.
	relaySender := newRetry(t, newRocketMQPublisher(t, b), 3)
	// Create the topic's route before the outage, as a running service has.
	if err := relaySender.Publish(topic, message.NewMessage("warm-up", nil)); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	got := consume(t, b, topic)

	for _, c := range sendCodes {
		b.Fail(c, rocketmqtest.RespServiceNotAvailable, -1)
	}
	start := time.Now()
	sent := make([]string, n)
	for i := range sent {
		sent[i] = watermill.NewUUID()
		if err := pub.Publish(topic, message.NewMessage(sent[i], []byte(fmt.Sprint("payload-", i)))); err != nil {
			t.Fatalf("async publish %d: %v", i, err)
		}
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("async close: %v", err)
	}
	stored := time.Since(start)
	if failed.Load() != 0 || accepted.Load() != int64(n) {
		t.Fatalf("accepted %d, failed %d (first: %v); want every message accepted", accepted.Load(), failed.Load(), firstErr.Load())
	}
	s, err := st.Stats(context.Background(), "")
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	if s.Backlog != int64(n) {
		t.Fatalf("stored %d rows (fallback stored %d), want %d", s.Backlog, fb.Stats().Stored, n)
	}

	b.ClearFaults()
	start = time.Now()
	relay := runRelay(t, fallback.RelayConfig{Store: st, Publisher: relaySender, PollInterval: 50 * time.Millisecond,
		BatchSize: 200, Concurrency: 8})
	waitDrained(t, st, "", 60*time.Second)
	drained := time.Since(start)
	got.waitAll(t, sent, 30*time.Second)

	delivered, lost, dupes := got.tally(sent)
	rs, _ := relay.Stats(context.Background())
	t.Logf("published %d while the broker was down: all stored in %v, drained in %v; delivered %d, lost %d, duplicates %d; relay %+v",
		n, stored.Round(time.Millisecond), drained.Round(time.Millisecond), delivered, lost, dupes, rs)
	if lost != 0 || delivered != n {
		t.Errorf("delivered %d, lost %d, want %d and 0", delivered, lost, n)
	}
}

func TestFallback_flapping_broker_loses_nothing(t *testing.T) {
	n := 3000
	b := newBroker(t, rocketmqtest.Config{})
	topic := uniqueName("flap")
	st := newStore(t, sqliteBackend, nil, nil)
	fb, err := fallback.NewPublisher(newRetry(t, newRocketMQPublisher(t, b), 2), fallback.Config{Store: st}, nil)
	if err != nil {
		t.Fatalf("fallback publisher: %v", err)
	}
	var failed atomic.Int64
	pub, err := async.NewPublisher(fb, async.Config{Hooks: []any{asyncResultFunc(func(r async.Result) {
		if r.Err != nil {
			failed.Add(1)
		}
	})}}, nil)
	if err != nil {
		t.Fatalf("async publisher: %v", err)
	}
	relaySender := newRetry(t, newRocketMQPublisher(t, b), 2)
	if err := relaySender.Publish(topic, message.NewMessage("warm-up", nil)); err != nil {
		t.Fatalf("warm-up: %v", err)
	}
	got := consume(t, b, topic)
	for _, c := range sendCodes {
		b.FailRandomly(c, rocketmqtest.RespServiceNotAvailable, 0.3)
	}
	relay := runRelay(t, fallback.RelayConfig{Store: st, Publisher: relaySender, PollInterval: 20 * time.Millisecond,
		Policy: policy.Policy{Backoff: policy.Fixed(10 * time.Millisecond)}})
	sent := make([]string, n)
	for i := range sent {
		sent[i] = watermill.NewUUID()
		if err := pub.Publish(topic, message.NewMessage(sent[i], []byte(fmt.Sprint("payload-", i)))); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("async close: %v", err)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d publishes reported an error, want every message sent or stored", failed.Load())
	}
	waitDrained(t, st, "", 60*time.Second)
	got.waitAll(t, sent, 30*time.Second)
	delivered, lost, dupes := got.tally(sent)
	rs, _ := relay.Stats(context.Background())
	t.Logf("published %d with 30%% of sends failing: stored %d, relay sent %d after %d failures; delivered %d, lost %d, duplicates %d",
		n, fb.Stats().Stored, rs.Sent, rs.Failed, delivered, lost, dupes)
	if lost != 0 {
		t.Errorf("lost %d", lost)
	}
	if fb.Stats().Stored == 0 {
		t.Errorf("no message went through the store: the faults did not bite")
	}
}

func TestFallback_message_the_broker_refuses_ends_in_the_poison_store_with_its_reason(t *testing.T) {
	t.Run("permanent refusal", func(t *testing.T) {
		b := newBroker(t, rocketmqtest.Config{})
		st := newStore(t, sqliteBackend, nil, nil)
		sender := newRetry(t, newRocketMQPublisher(t, b), 3)
		if err := st.Insert(context.Background(), sqlstore.Message{Topic: "refused", UUID: "poison-1",
			Payload: []byte("x"), FirstError: "broker down"}); err != nil {
			t.Fatalf("insert: %v", err)
		}
		for _, c := range sendCodes {
			b.Fail(c, rocketmqtest.RespNoPermission, -1)
		}
		relay := runRelay(t, fallback.RelayConfig{Store: st, Publisher: sender, PollInterval: 10 * time.Millisecond,
			Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(10 * time.Millisecond)}})
		p := waitPoisoned(t, st)
		if p.Metadata[metadata.DeadLetterReason] != fallback.ReasonPermanent || p.Attempts != 1 || p.UUID != "poison-1" ||
			!strings.HasPrefix(p.LastError, fallback.ReasonPermanent+": ") || p.Metadata[metadata.FallbackFirstError] != "broker down" {
			t.Errorf("poison row %+v", p)
		}
		if rs, _ := relay.Stats(context.Background()); rs.Poisoned != 1 {
			t.Errorf("relay stats %+v", rs)
		}
	})
	t.Run("unknown topic with topic creation off", func(t *testing.T) {
		// No route for the topic or for TBW102: the broker will never
		// create it, so the first attempt is the last.
		b := newBroker(t, rocketmqtest.Config{DisableAutoCreateTopics: true})
		st := newStore(t, sqliteBackend, nil, nil)
		sender := newRetry(t, newRocketMQPublisher(t, b), 3)
		if err := st.Insert(context.Background(), sqlstore.Message{Topic: "no-such-topic", UUID: "poison-3",
			Payload: []byte("x")}); err != nil {
			t.Fatalf("insert: %v", err)
		}
		runRelay(t, fallback.RelayConfig{Store: st, Publisher: sender, PollInterval: 10 * time.Millisecond,
			Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(10 * time.Millisecond)}})
		p := waitPoisoned(t, st)
		if p.Metadata[metadata.DeadLetterReason] != fallback.ReasonPermanent || p.Attempts != 1 || p.UUID != "poison-3" ||
			!strings.Contains(p.LastError, rocketmq.ErrTopicNotExist.Error()) {
			t.Errorf("poison row %+v", p)
		}
		if got := b.Messages("no-such-topic"); len(got) != 0 {
			t.Errorf("the broker stored %d messages for a topic it does not have", len(got))
		}
	})
	t.Run("refused until the policy runs out", func(t *testing.T) {
		// The broker answers SYSTEM_BUSY to every send: a retryable refusal
		// that never ends, so the row runs through all of the policy's
		// attempts.
		b := newBroker(t, rocketmqtest.Config{})
		b.CreateTopic(rocketmqtest.TopicConfig{Name: "busy-topic"})
		for _, c := range sendCodes {
			b.Fail(c, rocketmqtest.RespSystemBusy, -1)
		}
		st := newStore(t, sqliteBackend, nil, nil)
		sender := newRetry(t, newRocketMQPublisher(t, b), 1)
		if err := st.Insert(context.Background(), sqlstore.Message{Topic: "busy-topic", UUID: "poison-2"}); err != nil {
			t.Fatalf("insert: %v", err)
		}
		runRelay(t, fallback.RelayConfig{Store: st, Publisher: sender, PollInterval: 10 * time.Millisecond,
			Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(10 * time.Millisecond)}})
		p := waitPoisoned(t, st)
		if p.Metadata[metadata.DeadLetterReason] != fallback.ReasonMaxAttempts || p.Attempts != 3 || p.UUID != "poison-2" {
			t.Errorf("poison row %+v", p)
		}
	})
}

func waitPoisoned(t *testing.T, st *sqlstore.Store) sqlstore.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows := rowsOf(t, st, "poison")
		if len(rows) == 1 {
			if left := rowsOf(t, st, ""); len(left) != 0 {
				t.Fatalf("row both poisoned and still queued: %+v", left)
			}
			return rows[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("row not poisoned after 30s; queue: %+v", rowsOf(t, st, ""))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFallback_store_down_too_every_publish_reports_an_error(t *testing.T) {
	const n = 200
	b := newBroker(t, rocketmqtest.Config{})
	for _, c := range sendCodes {
		b.Fail(c, rocketmqtest.RespServiceNotAvailable, -1)
	}
	// A wrong DSN: nothing listens there.
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.Postgres}, nil)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	fb, err := fallback.NewPublisher(newRetry(t, newRocketMQPublisher(t, b), 2), fallback.Config{Store: st}, nil)
	if err != nil {
		t.Fatalf("fallback publisher: %v", err)
	}
	var accepted, notStored, other atomic.Int64
	pub, err := async.NewPublisher(fb, async.Config{Hooks: []any{asyncResultFunc(func(r async.Result) {
		switch {
		case r.Err == nil:
			accepted.Add(int64(len(r.Messages)))
		case errors.Is(r.Err, fallback.ErrNotStored) && errors.Is(r.Err, rocketmq.ErrBrokerUnavailable) &&
			errors.Is(r.Err, sqlstore.ErrStoreUnavailable):
			notStored.Add(int64(len(r.Messages)))
		default:
			other.Add(1)
		}
	})}}, nil)
	if err != nil {
		t.Fatalf("async: %v", err)
	}
	for i := range n {
		// Under caller-runs the error also comes back here; the ResultHook
		// has counted it already.
		if err := pub.Publish("orders", message.NewMessage(fmt.Sprint("u", i), nil)); err != nil &&
			!errors.Is(err, fallback.ErrNotStored) {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if accepted.Load() != 0 || notStored.Load() != n || other.Load() != 0 {
		t.Errorf("accepted %d, neither sent nor stored %d, other outcomes %d; want 0, %d, 0",
			accepted.Load(), notStored.Load(), other.Load(), n)
	}
	if s := fb.Stats(); s.Stored != 0 || s.Sent != 0 || s.NotStored != n {
		t.Errorf("fallback stats %+v", s)
	}
}

// The README wiring: async(fallback(retry(broker))) with the relay sending
// through the same broker publisher. async.Close closes that publisher; the
// relay must then stop, and leave every row where it is: a closed publisher
// is not the messages' fault (it used to poison the whole backlog).
func TestRelay_stops_when_publisher_is_closed_and_poisons_nothing(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	st := newStore(t, sqliteBackend, nil, nil)
	broker := newRocketMQPublisher(t, b)
	fb, err := fallback.NewPublisher(newRetry(t, broker, 3), fallback.Config{Store: st}, nil)
	if err != nil {
		t.Fatal(err)
	}
	leftovers, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: st, Checker: broker})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := async.NewPublisher(fb, async.Config{Leftovers: leftovers}, nil)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: broker, PollInterval: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The backlog an outage left behind.
	topic := uniqueName("relay_closed")
	var sent []string
	var rows []sqlstore.Message
	for i := range 200 {
		m := message.NewMessage(watermill.NewUUID(), []byte(fmt.Sprintf("m%d", i)))
		sent = append(sent, m.UUID)
		rows = append(rows, sqlstore.FromMessage("", topic, m))
	}
	if err := st.Insert(context.Background(), rows...); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil { // closes fb, retry and the shared broker publisher
		t.Fatalf("async close: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = relay.Run(ctx)
	if !errors.Is(err, fallback.ErrPublisherClosed) || !errors.Is(err, rocketmq.ErrClosed) {
		t.Errorf("Run = %v; want ErrPublisherClosed and rocketmq.ErrClosed", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Run returned only when its context ended")
	}

	left, err := st.List(context.Background(), sqlstore.Filter{AllQueues: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	poisoned := 0
	for _, r := range left {
		if r.Queue != "" {
			poisoned++
			continue
		}
		if r.Attempts != 0 {
			t.Errorf("row %s charged %d attempts", r.UUID, r.Attempts)
		}
		count[r.UUID]++
	}
	kept, lost, dupes := tally(sent, count)
	if poisoned != 0 || lost != 0 || dupes != 0 || kept != len(sent) {
		t.Errorf("%d rows kept, %d lost, %d duplicated, %d poisoned; want %d kept and none lost, duplicated or poisoned",
			kept, lost, dupes, poisoned, len(sent))
	}
	if s, _ := relay.Stats(context.Background()); s.Poisoned != 0 || s.Failed != 0 {
		t.Errorf("relay stats %+v; want nothing poisoned or failed", s)
	}
	if n := len(b.Messages(topic)); n != 0 {
		t.Errorf("broker got %d messages from a closed publisher", n)
	}
}

// A message is valid or invalid the same way through the broker publisher and
// through the stack: NUL in metadata used to pass the broker publisher and be
// refused by the fallback; a newline passes both and arrives unchanged.
func TestPublish_validates_a_message_the_same_way_through_the_broker_publisher_and_the_stack(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	st := newStore(t, sqliteBackend, nil, nil)
	broker := newRocketMQPublisher(t, b)
	fb, err := fallback.NewPublisher(newRetry(t, broker, 3), fallback.Config{Store: st}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := async.NewPublisher(fb, async.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	layers := []struct {
		name string
		pub  message.Publisher
	}{{"rocketmq", broker}, {"fallback(retry(rocketmq))", fb}, {"async(fallback(retry(rocketmq)))", pub}}

	topic := uniqueName("valid_same")
	for _, l := range layers {
		for _, v := range []string{"a\x00b", "a\x01b", "\xff"} {
			m := message.NewMessage(watermill.NewUUID(), []byte("x"))
			m.Metadata.Set("k", v)
			if err := l.pub.Publish(topic, m); !errors.Is(err, msgcheck.ErrInvalidMetadata) || !policy.IsPermanent(err) {
				t.Errorf("%s: Publish with metadata %q = %v; want a permanent msgcheck.ErrInvalidMetadata", l.name, v, err)
			}
		}
		if err := l.pub.Publish(topic, message.NewMessage("", []byte("x"))); !errors.Is(err, msgcheck.ErrEmptyUUID) {
			t.Errorf("%s: Publish with an empty UUID = %v; want msgcheck.ErrEmptyUUID", l.name, err)
		}
	}
	want := map[string]bool{}
	for _, l := range layers[:2] { // async answers before sending
		m := message.NewMessage(watermill.NewUUID(), []byte("x"))
		m.Metadata.Set("k", "line one\nline two")
		if err := l.pub.Publish(topic, m); err != nil {
			t.Errorf("%s: Publish with a newline in metadata = %v; want nil", l.name, err)
		}
		want[m.UUID] = true
	}
	for _, m := range b.Messages(topic) {
		id := m.Properties[rocketmq.PropertyUUID]
		if !want[id] {
			t.Errorf("broker stored %s, which was refused", id)
			continue
		}
		if got := m.Properties[rocketmq.PropertyMetadataPrefix+"k"]; got != "line one\nline two" {
			t.Errorf("metadata of %s arrived as %q", id, got)
		}
		delete(want, id)
	}
	if len(want) != 0 {
		t.Errorf("not stored: %v", want)
	}
	if rows, _ := st.List(context.Background(), sqlstore.Filter{AllQueues: true}); len(rows) != 0 {
		t.Errorf("%d rows stored for refused or sent messages", len(rows))
	}
}

// async's Leftovers write rows the relay sends later through the broker
// publisher: with that publisher as Checker, the store refuses at once what
// the broker would refuse, instead of keeping rows the relay can only poison.
func TestLeftovers_with_the_broker_as_checker_refuse_what_the_broker_would(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	st := newStore(t, sqliteBackend, nil, nil)
	broker := newRocketMQPublisher(t, b)
	leftovers, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: st, Checker: broker})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, topic string
		payload     int
		want        error
	}{
		{"5 MiB", "orders", 5 << 20, rocketmq.ErrMessageTooLarge},
		{"topic a/b", "a/b", 1, rocketmq.ErrInvalidTopic},
		{"topic TBW102", "TBW102", 1, rocketmq.ErrReservedTopic},
		{"another group's DLQ", "%DLQ%billing", 1, rocketmq.ErrReservedTopic},
	}
	for _, c := range cases {
		err := leftovers.Publish(c.topic, message.NewMessage(watermill.NewUUID(), make([]byte, c.payload)))
		if !errors.Is(err, c.want) || !policy.IsPermanent(err) {
			t.Errorf("%s: Publish = %v; want a permanent %v", c.name, err, c.want)
		}
	}
	if rows, _ := st.List(context.Background(), sqlstore.Filter{AllQueues: true}); len(rows) != 0 {
		t.Errorf("%d rows stored; the relay could only poison them", len(rows))
	}
	if err := leftovers.Publish("orders", message.NewMessage(watermill.NewUUID(), []byte("fine"))); err != nil {
		t.Errorf("a valid message: %v", err)
	}
}

// Two messages of one call share a UUID; the broker takes the first and
// refuses the second. With a ShouldStore that keeps every failure, the
// fallback must store the second, and only it: acceptance is tracked by
// position through retry and fallback, not by UUID.
func TestFallback_stores_the_refused_twin_of_an_accepted_message(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{MaxMessageSize: 1 << 10})
	st := newStore(t, sqliteBackend, nil, nil)
	fb, err := fallback.NewPublisher(newRetry(t, newRocketMQPublisher(t, b), 3),
		fallback.Config{Store: st, ShouldStore: func(error) bool { return true }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	topic := uniqueName("twin")
	id := watermill.NewUUID()
	small, large := message.NewMessage(id, []byte("small")), message.NewMessage(id, make([]byte, 2<<10))
	if err := fb.Publish(topic, small, large); err != nil {
		t.Fatalf("Publish = %v; want nil (one sent, one stored)", err)
	}
	var sentSmall, sentLarge int
	for _, m := range b.Messages(topic) {
		if len(m.Body) == len(small.Payload) {
			sentSmall++
		} else {
			sentLarge++
		}
	}
	rows, err := st.List(context.Background(), sqlstore.Filter{AllQueues: true})
	if err != nil {
		t.Fatal(err)
	}
	var storedSmall, storedLarge int
	for _, r := range rows {
		if r.UUID != id {
			t.Errorf("stored UUID %q", r.UUID)
		}
		if len(r.Payload) == len(small.Payload) {
			storedSmall++
		} else {
			storedLarge++
		}
	}
	if sentSmall != 1 || sentLarge != 0 || storedSmall != 0 || storedLarge != 1 {
		t.Errorf("small: %d sent, %d stored; large: %d sent, %d stored; want the small one sent once and the large one stored once",
			sentSmall, storedSmall, sentLarge, storedLarge)
	}
}

// asyncResultFunc is an async.ResultHook made of a function.
type asyncResultFunc func(async.Result)

func (f asyncResultFunc) OnAsyncResult(r async.Result) { f(r) }
