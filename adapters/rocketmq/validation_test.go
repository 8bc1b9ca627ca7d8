//go:build !race

package rocketmq_test

import (
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

func TestPublisher_refuses_an_empty_uuid_and_sends_nothing(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	topic := newTopic()
	err := pub.Publish(topic, message.NewMessage("ok", []byte("a")), message.NewMessage("", []byte("b")))
	if !errors.Is(err, rocketmq.ErrEmptyUUID) || !errors.Is(err, msgcheck.ErrEmptyUUID) || !policy.IsPermanent(err) {
		t.Fatalf("Publish = %v; want a permanent ErrEmptyUUID", err)
	}
	if n := len(b.Messages(topic)); n != 0 {
		t.Fatalf("broker stored %d messages of a refused call", n)
	}
}

func TestPublisher_refuses_reserved_topics_and_sends_nothing(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{})
	for _, topic := range []string{
		"TBW102", "SCHEDULE_TOPIC_XXXX", "RMQ_SYS_TRANS_HALF_TOPIC", "RMQ_SYS_TRACE_TOPIC", "rmq_sys_wheel_timer",
		"OFFSET_MOVED_EVENT", "%RETRY%orders_group", "%DLQ%orders_group",
	} {
		err := pub.Publish(topic, message.NewMessage("u-"+topic, []byte("x")))
		if !errors.Is(err, rocketmq.ErrReservedTopic) || !errors.Is(err, rocketmq.ErrInvalidTopic) || !policy.IsPermanent(err) {
			t.Errorf("Publish to %s = %v; want a permanent ErrReservedTopic", topic, err)
		}
		if n := len(b.Messages(topic)); n != 0 {
			t.Errorf("broker stored %d messages in %s", n, topic)
		}
		if err := rocketmq.ValidatePublishTopic(topic); !errors.Is(err, rocketmq.ErrReservedTopic) {
			t.Errorf("ValidatePublishTopic(%s) = %v; want ErrReservedTopic", topic, err)
		}
		if err := rocketmq.ValidateTopic(topic); err != nil {
			t.Errorf("ValidateTopic(%s) = %v; a subscriber may still read it", topic, err)
		}
	}
}

func TestPublisher_with_retry_groups_writes_only_their_retry_topics(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{RetryGroups: []string{"orders_group"}})
	for _, topic := range []string{"%RETRY%orders_group", "%RETRY%orders_group_orders"} {
		if err := pub.Publish(topic, message.NewMessage("u-"+topic, []byte("x"))); err != nil {
			t.Errorf("Publish to %s = %v; want nil", topic, err)
		}
	}
	if err := pub.Publish("%RETRY%other", message.NewMessage("u-other", []byte("x"))); !errors.Is(err, rocketmq.ErrReservedTopic) {
		t.Errorf("Publish to another group's retry topic = %v; want ErrReservedTopic", err)
	}
}

func TestPublisher_with_RetryTopicMarshaler_writes_any_retry_topic_but_no_dead_letter_topic(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{Marshaler: rocketmq.RetryTopicMarshaler{}})
	if err := pub.Publish("%RETRY%any_group", message.NewMessage("u-retry", []byte("x"))); err != nil {
		t.Errorf("Publish to a retry topic = %v; want nil", err)
	}
	for _, topic := range []string{"%DLQ%any_group", "TBW102"} {
		if err := pub.Publish(topic, message.NewMessage("u-"+topic, []byte("x"))); !errors.Is(err, rocketmq.ErrReservedTopic) {
			t.Errorf("Publish to %s = %v; want ErrReservedTopic", topic, err)
		}
	}
}

func TestPublisher_Check_reports_what_Publish_would_refuse_without_sending(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{})
	pub := newPublisher(t, b, rocketmq.PublisherConfig{MaxMessageSize: 1 << 10})
	topic := newTopic()
	nul := message.NewMessage("nul", nil)
	nul.Metadata.Set("k", "a\x00b")
	cases := []struct {
		name  string
		topic string
		msg   *message.Message
		want  error
	}{
		{"too large", topic, message.NewMessage("big", make([]byte, 2<<10)), rocketmq.ErrMessageTooLarge},
		{"slash in topic", "a/b", message.NewMessage("slash", nil), rocketmq.ErrInvalidTopic},
		{"reserved topic", "TBW102", message.NewMessage("tbw", nil), rocketmq.ErrReservedTopic},
		{"empty uuid", topic, message.NewMessage("", nil), rocketmq.ErrEmptyUUID},
		{"NUL in metadata", topic, nul, rocketmq.ErrInvalidMetadata},
		{"nil message", topic, nil, rocketmq.ErrNilMessage},
	}
	for _, c := range cases {
		if err := pub.Check(c.topic, c.msg); !errors.Is(err, c.want) {
			t.Errorf("Check(%s) = %v; want %v", c.name, err, c.want)
		}
		if err := pub.Publish(c.topic, c.msg); !errors.Is(err, c.want) {
			t.Errorf("Publish(%s) = %v; want %v", c.name, err, c.want)
		}
	}
	if err := pub.Check(topic, message.NewMessage("fine", []byte("x"))); err != nil {
		t.Errorf("Check(a valid message) = %v", err)
	}
	if n := len(b.Messages(topic)); n != 0 {
		t.Errorf("Check or a refused Publish stored %d messages", n)
	}
}
