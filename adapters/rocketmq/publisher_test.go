//go:build !race

package rocketmq_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

func newMsg(payload string) *message.Message {
	return message.NewMessage(watermill.NewUUID(), []byte(payload))
}

func TestPublisher_rejects_bad_input_before_anything_reaches_the_broker(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	good := newTopic()

	withMetadata := func(md message.Metadata) *message.Message {
		m := newMsg("x")
		m.Metadata = md
		return m
	}
	tests := []struct {
		name  string
		topic string
		msgs  []*message.Message
		want  error
	}{
		{name: "empty topic", topic: "", msgs: []*message.Message{newMsg("x")}, want: rocketmq.ErrInvalidTopic},
		{name: "invalid topic characters", topic: "orders.created", msgs: []*message.Message{newMsg("x")}, want: rocketmq.ErrInvalidTopic},
		{name: "topic with a space", topic: "a b", msgs: []*message.Message{newMsg("x")}, want: rocketmq.ErrInvalidTopic},
		{name: "128 character topic", topic: strings.Repeat("t", 128), msgs: []*message.Message{newMsg("x")}, want: rocketmq.ErrInvalidTopic},
		{name: "payload over 4 MiB", topic: good, msgs: []*message.Message{newMsg(strings.Repeat("x", 4<<20+1))}, want: rocketmq.ErrMessageTooLarge},
		{name: "nil message", topic: good, msgs: []*message.Message{nil}, want: rocketmq.ErrNilMessage},
		{name: "metadata with separator byte", topic: good, msgs: []*message.Message{withMetadata(message.Metadata{"k": "a\x01b"})}, want: rocketmq.ErrInvalidMetadata},
		{name: "metadata with invalid UTF-8", topic: good, msgs: []*message.Message{withMetadata(message.Metadata{"k": "\xff"})}, want: rocketmq.ErrInvalidMetadata},
		{name: "properties over the protocol limit", topic: good, msgs: []*message.Message{withMetadata(message.Metadata{"k": strings.Repeat("v", 40000)})}, want: rocketmq.ErrInvalidMetadata},
		{name: "bad delay level", topic: good, msgs: []*message.Message{withMetadata(message.Metadata{metadata.DelayLevel: "later"})}, want: rocketmq.ErrInvalidMetadata},
		{name: "one bad message among good ones", topic: good, msgs: []*message.Message{newMsg("a"), newMsg("b"), nil}, want: rocketmq.ErrNilMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := pub.Publish(tt.topic, tt.msgs...)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Publish error = %v, want %v", err, tt.want)
			}
			if !policy.IsPermanent(err) || rocketmq.IsRetryable(err) {
				t.Errorf("error %v must be permanent and not retryable", err)
			}
			if got := b.Messages(tt.topic); len(got) != 0 {
				t.Errorf("broker stored %d messages in %q, want none", len(got), tt.topic)
			}
		})
	}
	for _, topic := range b.Topics() {
		if topic == good || strings.HasPrefix(topic, "orders") || strings.HasPrefix(topic, "ttt") {
			t.Errorf("topic %q was created by a rejected publish", topic)
		}
	}
}

// The publisher remembers the last valid topic; a different one is checked
// again whatever was sent before.
func TestPublisher_checks_every_new_topic_after_a_valid_one(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	good := newTopic()
	for _, topic := range []string{good, good + ".x", good[:len(good)-1] + " ", good, good + strings.Repeat("t", 128)} {
		err := pub.Publish(topic, newMsg("x"))
		if want := topic == good; (err == nil) != want {
			t.Fatalf("Publish to %q = %v, want accepted: %v", topic, err, want)
		}
		if err != nil && !errors.Is(err, rocketmq.ErrInvalidTopic) {
			t.Fatalf("Publish to %q = %v, want ErrInvalidTopic", topic, err)
		}
	}
	if n := len(b.Messages(good)); n != 2 {
		t.Errorf("broker stored %d messages in %q, want 2", n, good)
	}
}

func TestPublisher_accepts_a_payload_of_exactly_MaxMessageSize(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{MaxMessageSize: 1000})
	topic := newTopic()
	if err := pub.Publish(topic, newMsg(strings.Repeat("x", 1000))); err != nil {
		t.Fatalf("Publish at the limit: %v", err)
	}
	err := pub.Publish(topic, newMsg(strings.Repeat("x", 1001)))
	if !errors.Is(err, rocketmq.ErrMessageTooLarge) {
		t.Fatalf("Publish over the limit = %v, want ErrMessageTooLarge", err)
	}
	if n := len(b.Messages(topic)); n != 1 {
		t.Errorf("broker stored %d messages, want 1", n)
	}
}

func TestPublisher_returns_ErrClosed_after_Close(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	topic := newTopic()
	err := pub.Publish(topic, newMsg("x"))
	if !errors.Is(err, rocketmq.ErrClosed) || !policy.IsPermanent(err) {
		t.Fatalf("Publish after Close = %v, want a permanent ErrClosed", err)
	}
	if n := len(b.Messages(topic)); n != 0 {
		t.Errorf("broker stored %d messages", n)
	}
}

func TestPublisher_transient_broker_failures_are_retryable_errors(t *testing.T) {
	tests := []struct {
		name string
		resp rocketmqtest.ResponseCode
	}{
		{name: "SYSTEM_BUSY", resp: rocketmqtest.RespSystemBusy},
		{name: "SYSTEM_ERROR", resp: rocketmqtest.RespSystemError},
		{name: "SERVICE_NOT_AVAILABLE", resp: rocketmqtest.RespServiceNotAvailable},
		{name: "FLUSH_DISK_TIMEOUT status", resp: rocketmqtest.RespFlushDiskTimeout},
	}
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	if err := pub.Publish(topic, newMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.Fail(rocketmqtest.CodeSendMessage, tt.resp, 1)
			msg := newMsg("x")
			err := pub.Publish(topic, msg)
			if !errors.Is(err, rocketmq.ErrBrokerUnavailable) || !rocketmq.IsRetryable(err) {
				t.Fatalf("Publish = %v, want a retryable ErrBrokerUnavailable", err)
			}
			var se *rocketmq.SendError
			if !errors.As(err, &se) || se.MessageUUID != msg.UUID || se.Index != 0 {
				t.Fatalf("error %v is not a SendError for %s", err, msg.UUID)
			}
			// The retry, as middleware/retry would do it, goes through.
			if err := pub.Publish(topic, msg); err != nil {
				t.Fatalf("retry: %v", err)
			}
		})
	}
}

func TestPublisher_no_permission_is_permanent(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	if err := pub.Publish(topic, newMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespNoPermission, 1)
	err := pub.Publish(topic, newMsg("x"))
	var se *rocketmq.SendError
	if !errors.Is(err, rocketmq.ErrNoPermission) || !policy.IsPermanent(err) || !errors.As(err, &se) || se.Code != 16 {
		t.Fatalf("Publish = %v, want a permanent ErrNoPermission with code 16", err)
	}
}

// publishToSilentBroker publishes one message after the broker stopped
// answering sends and fails the test when Publish has not returned within
// limit. It checks that the error is a retryable
// ErrSendTimeout that does not look like the caller's deadline, and that only
// the warm-up message reached the broker.
func publishToSilentBroker(t *testing.T, cfg rocketmq.PublisherConfig, limit time.Duration) {
	t.Helper()
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, cfg)
	topic := newTopic()
	if err := pub.Publish(topic, newMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	b.Silence(rocketmqtest.CodeSendMessage, true)
	defer b.Silence(rocketmqtest.CodeSendMessage, false)
	done := make(chan error, 1)
	go func() { done <- pub.Publish(topic, newMsg("x")) }()
	select {
	case err := <-done:
		if !errors.Is(err, rocketmq.ErrSendTimeout) || !rocketmq.IsRetryable(err) {
			t.Fatalf("Publish = %v, want a retryable ErrSendTimeout", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("the send timeout must not look like the caller's deadline: %v", err)
		}
	case <-time.After(limit):
		t.Fatalf("Publish to a silent broker did not return within %v", limit)
	}
	if n := len(b.Messages(topic)); n != 1 {
		t.Errorf("broker stored %d messages, want only the warm-up", n)
	}
}

func TestPublisher_enforces_SendTimeout_on_a_silent_broker(t *testing.T) {
	// The client alone would wait 3 s per attempt.
	publishToSilentBroker(t, rocketmq.PublisherConfig{SendTimeout: 300 * time.Millisecond}, 2500*time.Millisecond)
}

func TestPublisher_returns_the_callers_context_error_unretryable(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	if err := pub.Publish(topic, newMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	b.Silence(rocketmqtest.CodeSendMessage, true)
	defer b.Silence(rocketmqtest.CodeSendMessage, false)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	msg := newMsg("x")
	msg.SetContext(ctx)
	err := pub.Publish(topic, msg)
	if !errors.Is(err, context.DeadlineExceeded) || rocketmq.IsRetryable(err) {
		t.Fatalf("Publish = %v, want the caller's deadline, not retryable", err)
	}
}

func TestPublisher_unreachable_broker_is_retryable(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{SendTimeout: time.Second})
	topic := newTopic()
	if err := pub.Publish(topic, newMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	err := pub.Publish(topic, newMsg("x"))
	if !rocketmq.IsRetryable(err) {
		t.Fatalf("Publish to a stopped broker = %v, want retryable", err)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
}

func TestPublisher_batch_sends_one_request_and_keeps_uuids_and_msg_ids(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{Batch: true})
	topic := newTopic()
	var msgs []*message.Message
	for i := 0; i < 10; i++ {
		m := newMsg("batched")
		m.Metadata.Set("i", string(rune('0'+i)))
		msgs = append(msgs, m)
	}
	// A send of the batch request code only fails if the batch path is used.
	b.Fail(rocketmqtest.CodeSendBatchMessage, rocketmqtest.RespSystemBusy, 1)
	err := pub.Publish(topic, msgs...)
	var se *rocketmq.SendError
	if !errors.As(err, &se) || se.Index != 0 {
		t.Fatalf("first Publish = %v, want the injected batch failure at index 0", err)
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	stored := b.Messages(topic)
	if len(stored) != len(msgs) {
		t.Fatalf("stored %d messages, want %d", len(stored), len(msgs))
	}
	want := map[string]bool{}
	for _, m := range msgs {
		want[m.UUID] = true
	}
	for _, s := range stored {
		if !want[s.Properties[rocketmq.PropertyUUID]] {
			t.Errorf("stored message without a published UUID: %q", s.Properties[rocketmq.PropertyUUID])
		}
		if s.MsgID == s.OffsetMsgID {
			t.Errorf("batched message %s has no UNIQ_KEY, so its msg id would change on redelivery", s.MsgID)
		}
	}

	sub := newSubscriber(t, b, rocketmq.SubscriberConfig{})
	l := newLedger()
	for _, m := range msgs {
		l.markSent(m.UUID)
	}
	consumeAll(t, subscribe(t, sub, topic), l, len(msgs), 15*time.Second)
}

func TestPublisher_async_and_oneway_modes_deliver(t *testing.T) {
	for _, mode := range []rocketmq.SendMode{rocketmq.SendAsync, rocketmq.SendOneWay} {
		t.Run(mode.String(), func(t *testing.T) {
			b := newBroker(t, rocketmqtest.Config{})
			pub := newPublisher(t, b, rocketmq.PublisherConfig{SendMode: mode, Batch: true})
			topic := newTopic()
			l := newLedger()
			var msgs []*message.Message
			for i := 0; i < 20; i++ {
				m := newMsg("x")
				if i%5 == 0 {
					m.Metadata.Set(metadata.DelayLevel, "1") // travels alone
				}
				msgs = append(msgs, m)
				l.markSent(m.UUID)
			}
			if err := pub.Publish(topic, msgs...); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			sub := newSubscriber(t, b, rocketmq.SubscriberConfig{})
			consumeAll(t, subscribe(t, sub, topic), l, len(msgs), 20*time.Second)
		})
	}
}

// With the defaults (SendTimeout 3s, SendRetries 0) the adapter relies on the
// client's own 3 s bound per attempt; a silent broker must still give a
// retryable ErrSendTimeout, not a hang and not the caller's deadline.
func TestPublisher_default_SendTimeout_ends_a_send_to_a_silent_broker(t *testing.T) {
	publishToSilentBroker(t, rocketmq.PublisherConfig{}, 20*time.Second)
}

func TestPublisher_async_mode_reports_failures(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{SendMode: rocketmq.SendAsync, SendTimeout: 300 * time.Millisecond})
	topic := newTopic()
	if err := pub.Publish(topic, newMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemBusy, 1)
	if err := pub.Publish(topic, newMsg("x")); !rocketmq.IsRetryable(err) {
		t.Fatalf("Publish = %v, want retryable", err)
	}
	b.Silence(rocketmqtest.CodeSendMessage, true)
	defer b.Silence(rocketmqtest.CodeSendMessage, false)
	if err := pub.Publish(topic, newMsg("x")); !errors.Is(err, rocketmq.ErrSendTimeout) {
		t.Fatalf("Publish to a silent broker = %v, want ErrSendTimeout", err)
	}
}

func TestPublisher_hash_selection_keeps_a_sharding_key_on_one_queue(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{QueueSelection: rocketmq.HashShardingKey, Batch: true})
	topic := newTopic()
	var msgs []*message.Message
	for i := 0; i < 30; i++ {
		m := newMsg("x")
		m.Metadata.Set(metadata.ShardingKey, []string{"order-1", "order-2", "order-3"}[i%3])
		msgs = append(msgs, m)
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatal(err)
	}
	queueOf := map[string]int{}
	for _, s := range b.Messages(topic) {
		key := s.Properties["SHARDING_KEY"]
		if q, ok := queueOf[key]; ok && q != s.QueueID {
			t.Errorf("sharding key %s on queues %d and %d", key, q, s.QueueID)
		}
		queueOf[key] = s.QueueID
	}
	if len(queueOf) != 3 {
		t.Errorf("saw %d sharding keys, want 3", len(queueOf))
	}
}

// Regression: in client v2.1.2 an async send that times out calls back with
// the error and then dereferences a nil response; without a panic handler
// that panic kills the process.
func TestPublisher_async_timeout_panic_inside_the_client_is_contained(t *testing.T) {
	logs := watermill.NewCaptureLogger()
	rocketmq.RouteClientLogs(logs, rocketmq.ClientLogError)
	defer rocketmq.RouteClientLogs(nil, rocketmq.ClientLogError)

	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{SendMode: rocketmq.SendAsync, SendTimeout: 200 * time.Millisecond})
	topic := newTopic()
	if err := pub.Publish(topic, newMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	b.Silence(rocketmqtest.CodeSendMessage, true)
	defer b.Silence(rocketmqtest.CodeSendMessage, false)
	if err := pub.Publish(topic, newMsg("x")); !errors.Is(err, rocketmq.ErrSendTimeout) {
		t.Fatalf("Publish = %v, want ErrSendTimeout", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, e := range logs.Captured()[watermill.ErrorLogLevel] {
			if strings.Contains(e.Msg, "panicked") {
				return // the client panicked and the process survived
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the client's async timeout path did not run")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPublisher_partial_failure_reports_the_first_unsent_message(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{Batch: true})
	topic := newTopic()
	if err := pub.Publish(topic, newMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	// Requests: [m0 m1] as a batch, [m2] alone (delayed messages are not
	// batched), [m3 m4] as a batch. The single send fails.
	msgs := []*message.Message{newMsg("0"), newMsg("1"), newMsg("2"), newMsg("3"), newMsg("4")}
	msgs[2].Metadata.Set(metadata.DelayLevel, "1")
	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemBusy, 1)
	err := pub.Publish(topic, msgs...)
	var se *rocketmq.SendError
	if !errors.As(err, &se) || se.Index != 2 || se.MessageUUID != msgs[2].UUID || !rocketmq.IsRetryable(err) {
		t.Fatalf("Publish = %v, want a retryable SendError at index 2", err)
	}
	stored := map[string]bool{}
	for _, s := range b.Messages(topic) {
		stored[s.Properties[rocketmq.PropertyUUID]] = true
	}
	for i, m := range msgs {
		if want := i < 2; stored[m.UUID] != want {
			t.Errorf("message %d stored = %v, want %v", i, stored[m.UUID], want)
		}
	}
}

func TestPublisher_batches_stay_within_the_broker_size_limit(t *testing.T) {
	const limit = 2000
	b := newBroker(t, rocketmqtest.Config{MaxMessageSize: limit})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{Batch: true, MaxMessageSize: limit})
	topic := newTopic()
	var msgs []*message.Message
	for i := 0; i < 12; i++ {
		msgs = append(msgs, newMsg(strings.Repeat("x", 450)))
	}
	if err := pub.Publish(topic, msgs...); err != nil {
		t.Fatalf("Publish: %v (a batch went over the broker's limit?)", err)
	}
	if n := len(b.Messages(topic)); n != len(msgs) {
		t.Fatalf("stored %d messages, want %d", n, len(msgs))
	}
}

// routeLogGate is a client log target that holds the client's
// "the topic route info changed" line for one topic until released. The
// client writes that line after other sends can see the topic's queues and
// before it stores the broker addresses (apache/rocketmq-client-go#598), so
// holding it keeps that window open for as long as the test needs.
type routeLogGate struct {
	watermill.NopLogger
	topic          string
	held, released chan struct{}
	holdOnce       sync.Once
	retrying       chan struct{}
	retryingOnce   sync.Once
}

func (g *routeLogGate) With(watermill.LogFields) watermill.LoggerAdapter { return g }

func (g *routeLogGate) Info(msg string, fields watermill.LogFields) {
	if msg != "the topic route info changed" || fields["topic"] != g.topic {
		return
	}
	g.holdOnce.Do(func() {
		close(g.held)
		select {
		case <-g.released:
		case <-time.After(10 * time.Second):
		}
	})
}

// Debug receives the publisher's own lines.
func (g *routeLogGate) Debug(msg string, _ watermill.LogFields) {
	if strings.Contains(msg, "sending again") {
		g.retryingOnce.Do(func() { close(g.retrying) })
	}
}

// The v2.1.2 client fails a send that picks a queue whose broker address a
// concurrent first route lookup has not stored yet, before sending anything.
// The adapter sends it again once the address is there: both messages are
// stored, each once, and the caller sees no error.
func TestPublisher_first_sends_wait_for_a_broker_address_a_concurrent_route_lookup_is_storing(t *testing.T) {
	for _, mode := range []rocketmq.SendMode{rocketmq.SendSync, rocketmq.SendAsync, rocketmq.SendOneWay} {
		t.Run(mode.String(), func(t *testing.T) {
			b := newBroker(t, rocketmqtest.Config{})
			topic := newTopic()
			b.CreateTopic(rocketmqtest.TopicConfig{Name: topic})
			gate := &routeLogGate{topic: topic, held: make(chan struct{}), released: make(chan struct{}),
				retrying: make(chan struct{})}
			rocketmq.RouteClientLogs(gate, rocketmq.ClientLogInfo)
			defer rocketmq.RouteClientLogs(nil, rocketmq.ClientLogError)
			pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{
				NameServers: []string{b.NameServerAddr()}, SendMode: mode}, gate)
			if err != nil {
				t.Fatalf("NewPublisher: %v", err)
			}
			defer pub.Close()
			// Before Close, which waits for the held Publish.
			release := sync.OnceFunc(func() { close(gate.released) })
			defer release()
			first, second := newMsg("first"), newMsg("second")
			firstErr, secondErr := make(chan error, 1), make(chan error, 1)
			go func() { firstErr <- pub.Publish(topic, first) }()
			select {
			case <-gate.held: // the first send is storing the route
			case err := <-firstErr:
				t.Fatalf("the first Publish returned (%v) without looking the route up", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the client never logged the route change")
			}
			go func() { secondErr <- pub.Publish(topic, second) }()
			select {
			case <-gate.retrying: // the race happened; let the lookup finish
			case err := <-secondErr:
				t.Fatalf("second Publish while the broker address was unknown: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the second Publish neither failed nor waited for the broker address")
			}
			release()
			for name, ch := range map[string]chan error{"first": firstErr, "second": secondErr} {
				if err := <-ch; err != nil {
					t.Errorf("%s Publish: %v", name, err)
				}
			}
			want := map[string]int{first.UUID: 1, second.UUID: 1}
			deadline := time.Now().Add(10 * time.Second) // one-way sends land after Publish returns
			for {
				got := map[string]int{}
				for _, m := range b.Messages(topic) {
					got[m.Properties[rocketmq.PropertyUUID]]++
				}
				if maps.Equal(got, want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("stored UUIDs %v, want %v", got, want)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
