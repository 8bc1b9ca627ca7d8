//go:build !race

package rocketmq_test

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
)

func TestSubscriber_redelivers_a_nacked_message_in_process_with_same_uuid_and_metadata(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)

	sent := newMsg("payload")
	sent.Metadata.Set("k", "v")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	first := receive(t, msgs, 10*time.Second)
	first.Nack()
	second := receive(t, msgs, 10*time.Second)
	second.Ack()
	if first == second {
		t.Fatal("the redelivery must be a fresh message value")
	}
	if second.UUID != sent.UUID {
		t.Errorf("UUID = %s, want %s", second.UUID, sent.UUID)
	}
	if diff := cmp.Diff(map[string]string(first.Metadata), map[string]string(second.Metadata)); diff != "" {
		t.Errorf("metadata changed across redelivery (-first +second):\n%s", diff)
	}
	if got := second.Metadata.Get(metadata.ReconsumeTimes); got != "0" {
		t.Errorf("reconsume times = %s, want 0 (no broker redelivery)", got)
	}
	if n := len(b.Messages("%RETRY%" + sub.GroupFor(topic))); n != 0 {
		t.Errorf("%d messages went to the broker's retry topic", n)
	}
}

func TestSubscriber_broker_retry_redelivers_on_delay_levels_then_dead_letters(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{DelayScale: 0.001})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	const maxReconsume = 3
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{BrokerRetry: true, MaxReconsumeTimes: maxReconsume})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)

	sent := newMsg("fails")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	var msgIDs []string
	for want := 0; want <= maxReconsume; want++ {
		m := receive(t, msgs, 15*time.Second)
		if m.UUID != sent.UUID {
			t.Fatalf("delivery %d has UUID %s, want %s", want, m.UUID, sent.UUID)
		}
		if got := m.Metadata.Get(metadata.ReconsumeTimes); got != strconv.Itoa(want) {
			t.Fatalf("delivery %d has reconsume times %s", want, got)
		}
		if got := m.Metadata.Get(metadata.RocketMQTopic); got != topic {
			t.Errorf("delivery %d reports topic %q, want %q", want, got, topic)
		}
		msgIDs = append(msgIDs, m.Metadata.Get(metadata.RocketMQMsgID))
		if want == 1 {
			m.Metadata.Set(metadata.DelayLevel, "7") // the handler picks the next delay
		}
		m.Nack()
	}
	for _, id := range msgIDs[1:] {
		if id != msgIDs[0] {
			t.Errorf("msg id changed across broker redeliveries: %v", msgIDs)
		}
	}
	// Delayed copies wait in SCHEDULE_TOPIC_XXXX, queue = delay level - 1:
	// the broker's default 3 + reconsume times, except where the handler set 7.
	var levels []int
	for _, m := range b.Messages("SCHEDULE_TOPIC_XXXX") {
		if m.Properties[rocketmq.PropertyUUID] == sent.UUID {
			levels = append(levels, m.QueueID+1)
		}
	}
	// Messages lists them by queue; without the handler's choice they would be 3, 4, 5.
	sort.Ints(levels)
	if diff := cmp.Diff([]int{3, 5, 7}, levels); diff != "" {
		t.Errorf("delay levels of the redeliveries (-want +got):\n%s", diff)
	}
	dlq := "%DLQ%" + sub.GroupFor(topic)
	deadline := time.Now().Add(10 * time.Second)
	for len(b.Messages(dlq)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	dead := b.Messages(dlq)
	if len(dead) != 1 || dead[0].Properties[rocketmq.PropertyUUID] != sent.UUID {
		t.Fatalf("DLQ %s holds %d messages, want the nacked one", dlq, len(dead))
	}
	select {
	case m := <-msgs:
		t.Fatalf("message delivered again after dead-lettering: %s", m.Metadata.Get(metadata.ReconsumeTimes))
	case <-time.After(300 * time.Millisecond):
	}
}

func TestSubscriber_broker_retry_with_delay_level_minus_one_dead_letters_at_once(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{DelayScale: 0.001})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{BrokerRetry: true})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)
	if err := pub.Publish(topic, newMsg("poison")); err != nil {
		t.Fatal(err)
	}
	m := receive(t, msgs, 10*time.Second)
	m.Metadata.Set(metadata.DelayLevel, "-1")
	m.Nack()
	dlq := "%DLQ%" + sub.GroupFor(topic)
	deadline := time.Now().Add(10 * time.Second)
	for len(b.Messages(dlq)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// The broker counts the consumption that sent it to the DLQ.
	if dead := b.Messages(dlq); len(dead) != 1 || dead[0].ReconsumeTimes != 1 {
		t.Fatalf("DLQ holds %d messages, want the poison message after one consumption", len(dead))
	}
	if n := len(b.Messages("%RETRY%" + sub.GroupFor(topic))); n != 0 {
		t.Errorf("%d messages in the retry topic, want none", n)
	}
}

func TestSubscriber_broadcasting_delivers_every_message_to_every_subscriber_and_drops_nacks(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	group := "bc-" + topic
	subA := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group, Broadcasting: true})
	subB := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group, Broadcasting: true})
	msgsA := subscribe(t, subA, topic)
	msgsB := subscribe(t, subB, topic)

	const n = 10
	lA, lB := newLedger(), newLedger()
	for i := 0; i < n; i++ {
		m := newMsg("x")
		lA.markSent(m.UUID)
		lB.markSent(m.UUID)
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	nacked := make(chan string, 1)
	read := func(msgs <-chan *message.Message, l *ledger, nackFirst bool) {
		defer wg.Done()
		deadline := time.After(15 * time.Second)
		for {
			if _, delivered, _, _ := l.counts(); delivered == n {
				return
			}
			select {
			case m := <-msgs:
				if m.Metadata.Get(metadata.Broadcast) != "true" {
					t.Errorf("broadcast metadata = %q", m.Metadata.Get(metadata.Broadcast))
				}
				l.markDelivered(m.UUID)
				if nackFirst {
					nackFirst = false
					nacked <- m.UUID
					m.Nack()
					continue
				}
				m.Ack()
			case <-deadline:
				return
			}
		}
	}
	wg.Add(2)
	go read(msgsA, lA, true)
	go read(msgsB, lB, false)
	wg.Wait()
	for name, l := range map[string]*ledger{"A": lA, "B": lB} {
		if sent, delivered, dup, lost := l.counts(); lost != 0 || delivered != sent || dup != 0 {
			t.Errorf("subscriber %s: sent %d delivered %d duplicated %d lost %d", name, sent, delivered, dup, lost)
		}
	}
	uuid := <-nacked
	select {
	case m := <-msgsA:
		if m.UUID == uuid {
			t.Fatalf("nacked broadcast message %s was redelivered", uuid)
		}
	case <-time.After(500 * time.Millisecond):
	}
}

func TestSubscriber_tag_selector_filters_messages(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{TagSelector: "TagA || TagC"})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)
	want := map[string]bool{}
	for i, tag := range []string{"TagA", "TagB", "TagC", "TagB", "TagA"} {
		m := newMsg(strconv.Itoa(i))
		m.Metadata.Set(metadata.Tags, tag)
		if tag != "TagB" {
			want[m.UUID] = true
		}
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	for len(want) > 0 {
		m := receive(t, msgs, 10*time.Second)
		if !want[m.UUID] {
			t.Fatalf("received %s with tag %s", m.UUID, m.Metadata.Get(metadata.Tags))
		}
		delete(want, m.UUID)
		m.Ack()
	}
	select {
	case m := <-msgs:
		t.Fatalf("unexpected message with tag %s", m.Metadata.Get(metadata.Tags))
	case <-time.After(300 * time.Millisecond):
	}
}

func TestSubscriber_keeps_consuming_across_a_broker_restart_without_losing_messages(t *testing.T) {
	// A pull request in transit when the broker stops is never answered, and
	// client v2.1.2 then waits 30 s + 3 s before pulling that queue again
	// (held pulls are answered by Stop, and the client retries them after
	// 3 s). A long hold and a caught-up consumer make it very likely that
	// every pull is held, not in transit, at the moment of the restart.
	b := newBroker(t, rocketmqtest.Config{LongPollHold: 10 * time.Second})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{SendTimeout: time.Second})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)
	l := newLedger()

	const total = 300
	publishErrs := make(chan error, 1)
	go func() {
		for i := 0; i < total; i++ {
			if i == total/3 {
				for {
					if sent, delivered, _, _ := l.counts(); delivered == sent {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(300 * time.Millisecond) // let the next pulls be held
				if err := b.Stop(); err != nil {
					publishErrs <- err
					return
				}
				if err := b.Restart(); err != nil {
					publishErrs <- err
					return
				}
			}
			m := newMsg(strconv.Itoa(i))
			for {
				err := pub.Publish(topic, m)
				if err == nil {
					l.markSent(m.UUID)
					break
				}
				if !rocketmq.IsRetryable(err) {
					publishErrs <- err
					return
				}
				time.Sleep(50 * time.Millisecond) // as a retry policy would
			}
		}
		publishErrs <- nil
	}()
	deadline := time.After(45 * time.Second)
	published := false
	for {
		sent, delivered, _, _ := l.counts()
		if published && delivered == sent {
			break
		}
		select {
		case err := <-publishErrs:
			if err != nil {
				t.Fatalf("publishing: %v", err)
			}
			published = true
		case m := <-msgs:
			l.markDelivered(m.UUID)
			m.Ack()
		case <-deadline:
			sent, delivered, dup, lost := l.counts()
			t.Fatalf("timed out: sent %d delivered %d duplicated %d lost %d", sent, delivered, dup, lost)
		}
	}
	sent, delivered, dup, lost := l.counts()
	t.Logf("sent %d delivered %d duplicated %d lost %d", sent, delivered, dup, lost)
	if sent != total || lost != 0 {
		t.Fatalf("sent %d of %d, lost %d", sent, total, lost)
	}
}

func TestSubscriber_Close_commits_acks_that_arrive_within_CloseTimeout(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	group := "close-" + topic
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group, CloseTimeout: 5 * time.Second})
	msgs := subscribe(t, sub, topic)
	sent := newMsg("x")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	m := receive(t, msgs, 10*time.Second)
	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	select {
	case <-m.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("message context not cancelled by Close")
	}
	select {
	case <-closed:
		t.Fatal("Close returned while a handler held an unacked message")
	default:
	}
	m.Ack()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, ok := <-msgs; ok {
		t.Fatal("output channel still open after Close")
	}

	// The ack was committed: the group does not get the message again.
	again := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group})
	msgs2 := subscribe(t, again, topic)
	select {
	case m := <-msgs2:
		t.Fatalf("acked message %s redelivered after Close", m.UUID)
	case <-time.After(time.Second):
	}
}

func TestSubscriber_message_not_acked_before_Close_goes_to_the_next_subscriber(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	group := "unacked-" + topic
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group, CloseTimeout: 200 * time.Millisecond})
	msgs := subscribe(t, sub, topic)
	sent := newMsg("x")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	_ = receive(t, msgs, 10*time.Second) // never acked
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	next := newSubscriber(t, b, rocketmq.SubscriberConfig{ConsumerGroup: group})
	m := receive(t, subscribe(t, next, topic), 15*time.Second)
	m.Ack()
	if m.UUID != sent.UUID {
		t.Fatalf("got %s, want %s", m.UUID, sent.UUID)
	}
	if n := len(b.Messages("%RETRY%" + next.GroupFor(topic))); n != 0 {
		t.Errorf("the unacked message was sent back to the retry topic (%d)", n)
	}
}

func TestSubscriber_waits_for_the_route_when_topic_creation_is_off(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{DisableAutoCreateTopics: true})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{SkipTopicCreation: true, RoutePollInterval: 50 * time.Millisecond})
	topic := newTopic()
	type result struct {
		msgs <-chan *message.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := sub.Subscribe(context.Background(), topic)
		done <- result{msgs, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("Subscribe returned before the topic existed: %v", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	b.CreateTopic(rocketmqtest.TopicConfig{Name: topic})
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not return after the topic was created")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	sent := newMsg("x")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, r.msgs, 10*time.Second); m.UUID != sent.UUID {
		t.Fatalf("got %s", m.UUID)
	} else {
		m.Ack()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := sub.Subscribe(ctx, newTopic()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe with an expiring context = %v, want its deadline", err)
	}
}

// pastDeadline is a context whose deadline has passed while its own timer has
// not marked it done yet: what a dial bounded by the deadline can see for a
// moment.
type pastDeadline struct{ context.Context }

func (pastDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

func TestSubscriber_Subscribe_returns_the_deadline_when_the_route_lookup_runs_out_of_time(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{DisableAutoCreateTopics: true})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{SkipTopicCreation: true, RoutePollInterval: 50 * time.Millisecond})
	_, err := sub.Subscribe(pastDeadline{context.Background()}, newTopic())
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, rocketmq.ErrBrokerUnavailable) {
		t.Fatalf("Subscribe = %v, want the context's deadline, not an unavailable broker", err)
	}
}

func TestSubscriber_creates_missing_topic_and_retry_topic(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{DisableAutoCreateTopics: true})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{TopicQueueNums: 2})
	topic := newTopic()
	if err := sub.SubscribeInitialize(topic); err != nil {
		t.Fatal(err)
	}
	topics := map[string]bool{}
	for _, name := range b.Topics() {
		topics[name] = true
	}
	if !topics[topic] || !topics["%RETRY%"+sub.GroupFor(topic)] {
		t.Fatalf("topics after SubscribeInitialize: %v", b.Topics())
	}
}

func TestSubscriber_rejects_invalid_topics_and_use_after_Close(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{})
	for _, topic := range []string{"", "a.b", string(make([]byte, 128))} {
		if _, err := sub.Subscribe(context.Background(), topic); !errors.Is(err, rocketmq.ErrInvalidTopic) {
			t.Errorf("Subscribe(%q) = %v, want ErrInvalidTopic", topic, err)
		}
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe(context.Background(), newTopic()); !errors.Is(err, rocketmq.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func TestPublishAndConsume_under_random_send_failures_lose_no_message(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{Batch: true})
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)
	b.FailRandomly(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemBusy, 0.3)
	b.FailRandomly(rocketmqtest.CodeSendBatchMessage, rocketmqtest.RespServiceNotAvailable, 0.3)
	defer b.ClearFaults()

	l := newLedger()
	failures := 0
	for i := 0; i < 100; i++ {
		batch := []*message.Message{newMsg("a"), newMsg("b")}
		if i%2 == 0 {
			batch = batch[:1]
		}
		for {
			err := pub.Publish(topic, batch...)
			if err == nil {
				break
			}
			if !rocketmq.IsRetryable(err) {
				t.Fatalf("Publish: %v is not retryable", err)
			}
			failures++
		}
		for _, m := range batch {
			l.markSent(m.UUID)
		}
	}
	if failures == 0 {
		t.Fatal("no send failed: the fault injection did not run")
	}
	sent, _, _, _ := l.counts()
	consumeAll(t, msgs, l, sent, 20*time.Second)
	_, delivered, dup, lost := l.counts()
	t.Logf("sent %d (after %d retryable failures) delivered %d duplicated %d lost %d", sent, failures, delivered, dup, lost)
	if lost != 0 {
		t.Fatalf("lost %d messages", lost)
	}
}

func TestSubscriber_waits_NackResendDelay_on_its_clock_before_redelivering(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	fake := clocktest.NewFake(time.Unix(1_700_000_000, 0))
	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{NackResendDelay: time.Minute, Clock: fake})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)
	sent := newMsg("x")
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	receive(t, msgs, 10*time.Second).Nack()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fake.BlockUntil(ctx, 1); err != nil {
		t.Fatalf("no redelivery timer pending: %v", err)
	}
	if d, _ := fake.NextDeadline(); d.Sub(fake.Now()) != time.Minute {
		t.Errorf("redelivery scheduled in %v, want 1m", d.Sub(fake.Now()))
	}
	select {
	case m := <-msgs:
		t.Fatalf("redelivered %s before the delay passed", m.UUID)
	default:
	}
	fake.Advance(time.Minute)
	m := receive(t, msgs, 10*time.Second)
	m.Ack()
	if m.UUID != sent.UUID {
		t.Fatalf("got %s, want %s", m.UUID, sent.UUID)
	}
}
