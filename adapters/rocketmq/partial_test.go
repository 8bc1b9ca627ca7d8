//go:build !race

package rocketmq_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// storedCopies counts the copies of each UUID the broker holds for topic,
// delayed ones (still in SCHEDULE_TOPIC_XXXX) included.
func storedCopies(b *rocketmqtest.Broker, topic string) map[string]int {
	copies := map[string]int{}
	for _, s := range b.Messages(topic) {
		copies[s.Properties[rocketmq.PropertyUUID]]++
	}
	for _, s := range b.Messages("SCHEDULE_TOPIC_XXXX") {
		if s.Properties["REAL_TOPIC"] == topic {
			copies[s.Properties[rocketmq.PropertyUUID]]++
		}
	}
	return copies
}

func uuidsOf(msgs []*message.Message) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.UUID
	}
	return ids
}

func TestRetryPublisher_resends_only_the_messages_the_broker_did_not_confirm(t *testing.T) {
	tests := []struct {
		name string
		mode rocketmq.SendMode
		// acceptedIdx are the messages the broker confirmed in the failed
		// call: in sync mode those before the failed request, in async mode
		// every other request (all are sent before the answers are read).
		acceptedIdx []int
	}{
		{name: "sync", mode: rocketmq.SendSync, acceptedIdx: []int{0, 1}},
		{name: "async", mode: rocketmq.SendAsync, acceptedIdx: []int{0, 1, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Delayed messages stay in the schedule topic for the whole test.
			b := newBroker(t, rocketmqtest.Config{DelayScale: 1000})
			inner := newPublisher(t, b, rocketmq.PublisherConfig{Batch: true, SendMode: tt.mode})
			topic := newTopic()
			if err := inner.Publish(topic, newMsg("warm-up")); err != nil {
				t.Fatal(err)
			}
			var retries []retry.Params
			pub, err := retry.NewPublisher(inner, retry.Config{
				Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Millisecond)},
				Hooks: []any{retryFunc(func(p retry.Params) {
					p.Messages = append([]*message.Message(nil), p.Messages...)
					retries = append(retries, p)
				})},
			}, testLogger())
			if err != nil {
				t.Fatal(err)
			}

			// Requests: [m0 m1] as a batch, [m2] alone (delayed messages are
			// not batched), [m3 m4] as a batch. The single send fails once.
			msgs := []*message.Message{newMsg("0"), newMsg("1"), newMsg("2"), newMsg("3"), newMsg("4")}
			msgs[2].Metadata.Set(metadata.DelayLevel, "1")
			b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemBusy, 1)
			if err := pub.Publish(topic, msgs...); err != nil {
				t.Fatalf("Publish through retry: %v", err)
			}

			if len(retries) != 1 {
				t.Fatalf("%d retries, want 1", len(retries))
			}
			var se *rocketmq.SendError
			if !errors.As(retries[0].Err, &se) {
				t.Fatalf("first attempt failed with %v, want a *SendError", retries[0].Err)
			}
			var accepted, resent []string
			for i, m := range msgs {
				if contains(tt.acceptedIdx, i) {
					accepted = append(accepted, m.UUID)
				} else {
					resent = append(resent, m.UUID)
				}
			}
			if diff := cmp.Diff(accepted, se.Accepted()); diff != "" {
				t.Errorf("Accepted() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(resent, uuidsOf(retries[0].Messages)); diff != "" {
				t.Errorf("messages of the retry (-want +got):\n%s", diff)
			}

			copies := storedCopies(b, topic)
			sent, lost, duplicated := len(msgs), 0, 0
			for _, m := range msgs {
				switch n := copies[m.UUID]; {
				case n == 0:
					lost++
				case n > 1:
					duplicated += n - 1
				}
			}
			t.Logf("sent %d lost %d duplicated %d", sent, lost, duplicated)
			if lost != 0 || duplicated != 0 {
				t.Fatalf("lost %d, duplicated %d; want none", lost, duplicated)
			}
		})
	}
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestSendError_Accepted_is_empty_when_the_first_request_fails(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	if err := pub.Publish(topic, newMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemBusy, 1)
	err := pub.Publish(topic, newMsg("0"), newMsg("1"))
	var pe retry.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("Publish = %v, want an error with Accepted()", err)
	}
	if got := pe.Accepted(); len(got) != 0 {
		t.Fatalf("Accepted() = %v, want none", got)
	}
}

func TestPublisher_unknown_topic_without_auto_creation_is_a_permanent_ErrTopicNotExist(t *testing.T) {
	modes := []struct {
		name string
		mode rocketmq.SendMode
	}{
		{"sync", rocketmq.SendSync},
		{"async", rocketmq.SendAsync},
		{"one-way", rocketmq.SendOneWay},
	}
	b := newBroker(t, rocketmqtest.Config{DisableAutoCreateTopics: true})
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			pub := newPublisher(t, b, rocketmq.PublisherConfig{SendMode: m.mode})
			topic := newTopic()

			err := pub.Publish(topic, newMsg("x"), newMsg("y"))
			if !errors.Is(err, rocketmq.ErrTopicNotExist) || !policy.IsPermanent(err) || rocketmq.IsRetryable(err) {
				t.Fatalf("Publish = %v, want a permanent ErrTopicNotExist", err)
			}
			if errors.Is(err, rocketmq.ErrBrokerUnavailable) {
				t.Errorf("Publish = %v, also matches ErrBrokerUnavailable", err)
			}
			if n := len(b.Messages(topic)); n != 0 {
				t.Errorf("broker stored %d messages", n)
			}

			// Once an operator creates the topic, the same publisher sends
			// to it.
			b.CreateTopic(rocketmqtest.TopicConfig{Name: topic})
			if err := pub.Publish(topic, newMsg("z")); err != nil {
				t.Fatalf("Publish after CreateTopic: %v", err)
			}
		})
	}
}

// A broker that has just started can be listed by the name server before its
// routes are, TBW102's included (RocketMQ 5.x registers in steps). That
// broker creates topics (autoCreateTopicEnable=true in its configuration),
// so a send in that moment is retryable, not a permanent ErrTopicNotExist
// that would poison a relayed message. The route queries answering
// TOPIC_NOT_EXIST stand for that moment.
func TestPublisher_no_route_from_a_listed_broker_that_creates_topics_is_retryable(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{SendTimeout: 2 * time.Second})
	topic := newTopic()
	b.Fail(rocketmqtest.CodeGetRouteInfoByTopic, rocketmqtest.RespTopicNotExist, -1)
	err := pub.Publish(topic, newMsg("x"))
	if err == nil || !rocketmq.IsRetryable(err) || policy.IsPermanent(err) {
		t.Fatalf("Publish = %v, want a retryable error", err)
	}
	if n := len(b.Messages(topic)); n != 0 {
		t.Fatalf("broker stored %d messages while no route was known", n)
	}
	// Once the routes are there, the same publisher sends.
	b.Fail(rocketmqtest.CodeGetRouteInfoByTopic, rocketmqtest.RespTopicNotExist, 0)
	if err := pub.Publish(topic, newMsg("y")); err != nil {
		t.Fatalf("Publish once routes answer: %v", err)
	}
}

func TestPublisher_TOPIC_NOT_EXIST_for_a_routed_topic_is_retryable(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	if err := pub.Publish(topic, newMsg("warm-up")); err != nil {
		t.Fatal(err)
	}
	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespTopicNotExist, 1)
	err := pub.Publish(topic, newMsg("x"))
	if !errors.Is(err, rocketmq.ErrTopicNotExist) || !errors.Is(err, rocketmq.ErrBrokerUnavailable) || !rocketmq.IsRetryable(err) {
		t.Fatalf("Publish = %v, want a retryable ErrTopicNotExist", err)
	}
}

func TestPublisher_unreachable_name_server_is_not_ErrTopicNotExist(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{SendTimeout: time.Second})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	err := pub.Publish(newTopic(), newMsg("x"))
	if !rocketmq.IsRetryable(err) || errors.Is(err, rocketmq.ErrTopicNotExist) {
		t.Fatalf("Publish = %v, want a retryable error that is not ErrTopicNotExist", err)
	}
}

// retryFunc is a retry.RetryHook made of a function.
type retryFunc func(retry.Params)

func (f retryFunc) OnPublishRetry(p retry.Params) { f(p) }
