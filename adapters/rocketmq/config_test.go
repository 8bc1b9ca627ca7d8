package rocketmq_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/reliamq/reliamq/adapters/rocketmq"
)

func TestPublisherConfig_Validate(t *testing.T) {
	ns := []string{"127.0.0.1:9876"}
	tests := []struct {
		name  string
		cfg   rocketmq.PublisherConfig
		field string // empty: valid
	}{
		{name: "minimal", cfg: rocketmq.PublisherConfig{NameServers: ns}},
		{name: "no name servers", cfg: rocketmq.PublisherConfig{}, field: "NameServers"},
		{name: "empty name server", cfg: rocketmq.PublisherConfig{NameServers: []string{""}}, field: "NameServers[0]"},
		{name: "unknown send mode", cfg: rocketmq.PublisherConfig{NameServers: ns, SendMode: 7}, field: "SendMode"},
		{name: "unknown queue selection", cfg: rocketmq.PublisherConfig{NameServers: ns, QueueSelection: 9}, field: "QueueSelection"},
		{name: "negative timeout", cfg: rocketmq.PublisherConfig{NameServers: ns, SendTimeout: -time.Second}, field: "SendTimeout"},
		{name: "negative retries", cfg: rocketmq.PublisherConfig{NameServers: ns, SendRetries: -1}, field: "SendRetries"},
		{name: "negative max size", cfg: rocketmq.PublisherConfig{NameServers: ns, MaxMessageSize: -1}, field: "MaxMessageSize"},
		{name: "access key without secret", cfg: rocketmq.PublisherConfig{NameServers: ns,
			Credentials: rocketmq.Credentials{AccessKey: "ak"}}, field: "Credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			// Regression: config errors matched no sentinel.
			want := rocketmq.ErrInvalidConfig.Error() + ": " + tt.field + ":"
			if !errors.Is(err, rocketmq.ErrInvalidConfig) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig as %q...", err, want)
			}
			if _, nerr := rocketmq.NewPublisher(tt.cfg, nil); !errors.Is(nerr, rocketmq.ErrInvalidConfig) || !strings.Contains(nerr.Error(), want) {
				t.Fatalf("NewPublisher = %v, want ErrInvalidConfig as %q...", nerr, want)
			}
		})
	}
}

func TestSubscriberConfig_Validate(t *testing.T) {
	ns := []string{"127.0.0.1:9876"}
	tests := []struct {
		name  string
		cfg   rocketmq.SubscriberConfig
		field string
	}{
		{name: "minimal", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g"}},
		{name: "no group", cfg: rocketmq.SubscriberConfig{NameServers: ns}, field: "ConsumerGroup"},
		{name: "reserved group", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "DEFAULT_CONSUMER"}, field: "ConsumerGroup"},
		{name: "invalid group characters", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "a b"}, field: "ConsumerGroup"},
		{name: "group too long for its retry topic", cfg: rocketmq.SubscriberConfig{NameServers: ns,
			ConsumerGroup: strings.Repeat("g", 104)}, field: "ConsumerGroup"},
		{name: "no name servers", cfg: rocketmq.SubscriberConfig{ConsumerGroup: "g"}, field: "NameServers"},
		{name: "timestamp missing", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g",
			ConsumeFrom: rocketmq.ConsumeFromTimestamp}, field: "ConsumeTimestamp"},
		{name: "unknown consume from", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g", ConsumeFrom: 5}, field: "ConsumeFrom"},
		{name: "negative goroutines", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g", ConsumeGoroutines: -1}, field: "ConsumeGoroutines"},
		{name: "negative consume batch", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g", ConsumeBatch: -1}, field: "ConsumeBatch"},
		{name: "consume batch over the pull batch", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g", ConsumeBatch: 33}, field: "ConsumeBatch"},
		{name: "negative split after", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g", SplitAfter: -time.Millisecond}, field: "SplitAfter"},
		{name: "negative reconsume", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g", MaxReconsumeTimes: -2}, field: "MaxReconsumeTimes"},
		{name: "unlimited reconsume", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g", MaxReconsumeTimes: rocketmq.UnlimitedReconsumeTimes}},
		{name: "too many queues", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g", TopicQueueNums: 2000}, field: "TopicQueueNums"},
		{name: "negative close timeout", cfg: rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: "g", CloseTimeout: -1}, field: "CloseTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			// Regression: config errors matched no sentinel.
			want := rocketmq.ErrInvalidConfig.Error() + ": " + tt.field + ":"
			if !errors.Is(err, rocketmq.ErrInvalidConfig) || !strings.Contains(err.Error(), want) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig as %q...", err, want)
			}
			if _, nerr := rocketmq.NewSubscriber(tt.cfg, nil); !errors.Is(nerr, rocketmq.ErrInvalidConfig) || !strings.Contains(nerr.Error(), want) {
				t.Fatalf("NewSubscriber = %v, want ErrInvalidConfig as %q...", nerr, want)
			}
		})
	}
}

func TestSubscriber_GroupFor_derives_a_valid_group_per_topic(t *testing.T) {
	sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: []string{"127.0.0.1:1"}, ConsumerGroup: "billing"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if got := sub.GroupFor("orders"); got != "billing_orders" {
		t.Errorf("GroupFor(orders) = %q", got)
	}
	long := strings.Repeat("t", 127)
	g := sub.GroupFor(long)
	if err := rocketmq.ValidateTopic("%RETRY%" + g); err != nil {
		t.Errorf("retry topic of %q is invalid: %v", g, err)
	}
	if g == sub.GroupFor(strings.Repeat("u", 127)) {
		t.Error("two long topics got the same group")
	}
	single, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: []string{"127.0.0.1:1"},
		ConsumerGroup: "billing", SingleTopicGroup: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	if got := single.GroupFor("orders"); got != "billing" {
		t.Errorf("SingleTopicGroup GroupFor = %q, want billing", got)
	}
}

func TestRouteClientLogs_forwards_errors_only_by_default_and_drops_message_contents(t *testing.T) {
	logger := watermill.NewCaptureLogger()
	rocketmq.RouteClientLogs(logger, rocketmq.ClientLogError)
	defer rocketmq.RouteClientLogs(nil, rocketmq.ClientLogError)

	rlog.Info("noisy info", nil)
	rlog.Warning("a warning", nil)
	cause := errors.New("boom")
	rlog.Error("consume failed", map[string]interface{}{
		rlog.LogKeyUnderlayError: cause,
		rlog.LogKeyMessages:      "secret payload",
		"message":                "secret payload",
		"topic":                  "t",
	})
	rlog.Fatal("fatal is only logged", nil) // the default rlog logger would exit

	captured := logger.Captured()
	if n := len(captured[watermill.InfoLogLevel]) + len(captured[watermill.DebugLogLevel]); n != 0 {
		t.Errorf("%d info/debug lines forwarded at error level", n)
	}
	errs := captured[watermill.ErrorLogLevel]
	if len(errs) != 2 {
		t.Fatalf("forwarded %d error lines, want 2", len(errs))
	}
	if !errors.Is(errs[0].Err, cause) {
		t.Errorf("error = %v, want the client's cause", errs[0].Err)
	}
	for k, v := range errs[0].Fields {
		if s, ok := v.(string); ok && strings.Contains(s, "secret") {
			t.Errorf("field %s carries message contents", k)
		}
	}
	if errs[0].Fields["topic"] != "t" {
		t.Errorf("topic field lost: %v", errs[0].Fields)
	}

	rocketmq.RouteClientLogs(logger, rocketmq.ClientLogWarn)
	rlog.Warning("now visible", nil)
	if n := len(logger.Captured()[watermill.InfoLogLevel]); n != 1 {
		t.Errorf("warnings forwarded at warn level: %d, want 1", n)
	}
}
