package redelivery_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// Regression: with the Durable and InMemory schedulers a message retried and then
// dead-lettered left no log line at all.
func TestMiddleware_logs_each_scheduled_retry_at_debug_and_the_dead_letter_at_error_without_the_payload(t *testing.T) {
	const payload = "card=4111-1111-1111-1111;secret=hunter2"
	for _, scheduler := range []string{"in-memory", "durable"} {
		t.Run(scheduler, func(t *testing.T) {
			fake := clocktest.NewFake(time.Time{})
			logger := watermill.NewCaptureLogger()
			dlq := &fakepub.Publisher{}
			cfg := redelivery.Config{
				ConsumerGroup: "billing", Handler: "charge", Scheduler: redelivery.NewInMemory(redelivery.InMemoryConfig{}),
				Policy:    policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Minute)},
				Publisher: &fakepub.Publisher{}, DeadLetterPublisher: dlq, Clock: fake,
			}
			if scheduler == "durable" {
				cfg.Scheduler = redelivery.NewDurable(redelivery.DurableConfig{Store: newSQLiteStore(t, fake)})
			}
			r, err := redelivery.New(cfg, logger)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			h := r.Middleware(func(m *message.Message) ([]*message.Message, error) {
				return nil, fmt.Errorf("charge declined (try %s)", m.Metadata.Get(metadata.ReconsumeTimes))
			})
			// The first delivery and the two redeliveries the policy allows,
			// as the retry topic hands them back.
			for count := 0; count < 3; count++ {
				msg := message.NewMessage("m-1", []byte(payload))
				msg.Metadata.Set(metadata.OriginalTopic, "orders")
				if count > 0 {
					msg.Metadata.Set(redelivery.RedeliveryCount, strconv.Itoa(count))
				}
				if _, err := h(msg); err != nil {
					t.Fatalf("delivery %d: %v", count, err)
				}
			}
			if n := len(dlq.Accepted()); n != 1 {
				t.Fatalf("%d dead-lettered messages, want 1", n)
			}

			captured := logger.Captured()
			debug := captured[watermill.DebugLogLevel]
			var scheduled []watermill.CapturedMessage
			for _, m := range debug {
				if m.Fields["message_uuid"] == "m-1" {
					scheduled = append(scheduled, m)
				}
			}
			if len(scheduled) != 2 {
				t.Fatalf("%d debug lines about m-1, want one per scheduled retry (2): %+v", len(scheduled), debug)
			}
			for i, m := range scheduled {
				want := watermill.LogFields{
					"message_uuid": "m-1", "topic": "orders", "consumer_group": "billing", "handler": "charge",
					"attempt": i + 1, "retry": i + 1, "route": "retry-topic",
					"reason": fmt.Sprintf("charge declined (try %d)", i),
				}
				for k, v := range want {
					if m.Fields[k] != v {
						t.Errorf("scheduled line %d: field %s = %v, want %v (all: %v)", i, k, m.Fields[k], v, m.Fields)
					}
				}
			}
			var dead []watermill.CapturedMessage
			for _, m := range captured[watermill.ErrorLogLevel] {
				if m.Fields["message_uuid"] == "m-1" {
					dead = append(dead, m)
				}
			}
			if len(dead) != 1 {
				t.Fatalf("%d error lines about m-1, want the dead letter", len(dead))
			}
			want := watermill.LogFields{
				"message_uuid": "m-1", "topic": "orders", "consumer_group": "billing", "handler": "charge",
				"attempt": 3, "reason": redelivery.ReasonMaxAttempts, "dead_letter_topic": r.Config().DeadLetterTopic,
			}
			for k, v := range want {
				if dead[0].Fields[k] != v {
					t.Errorf("dead-letter line: field %s = %v, want %v (all: %v)", k, dead[0].Fields[k], v, dead[0].Fields)
				}
			}
			if dead[0].Err == nil || !strings.Contains(dead[0].Err.Error(), "charge declined (try 2)") {
				t.Errorf("dead-letter line carries error %v, want the handler's last error", dead[0].Err)
			}

			for level, msgs := range captured {
				for _, m := range msgs {
					text := m.Msg + fmt.Sprint(m.Fields)
					if m.Err != nil {
						text += m.Err.Error()
					}
					if strings.Contains(text, "4111") || strings.Contains(text, "hunter2") {
						t.Errorf("level %d line %q carries the payload: %s", level, m.Msg, text)
					}
				}
			}
		})
	}
}

// A permanent error dropped with DropPermanent is logged at error level too.
func TestMiddleware_logs_a_dropped_permanent_failure_at_error(t *testing.T) {
	logger := watermill.NewCaptureLogger()
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: "billing", Handler: "charge", Scheduler: redelivery.NewInMemory(redelivery.InMemoryConfig{}), DropPermanent: true,
		Publisher: &fakepub.Publisher{},
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	msg := message.NewMessage("m-2", []byte("secret payload"))
	if _, err := r.Middleware(func(*message.Message) ([]*message.Message, error) {
		return nil, policy.Permanent(errors.New("bad request"))
	})(msg); err != nil {
		t.Fatal(err)
	}
	lines := logger.Captured()[watermill.ErrorLogLevel]
	if len(lines) != 1 || lines[0].Fields["message_uuid"] != "m-2" || lines[0].Fields["reason"] != redelivery.ReasonPermanent ||
		lines[0].Fields["attempt"] != 1 {
		t.Fatalf("error lines %+v, want one about m-2 with reason %s and attempt 1", lines, redelivery.ReasonPermanent)
	}
}
