package redelivery_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/policy"
)

type capturePublisher struct {
	topics []string
	msgs   []*message.Message
	err    error
}

func (p *capturePublisher) Publish(topic string, msgs ...*message.Message) error {
	if p.err != nil {
		return p.err
	}
	for _, m := range msgs {
		p.topics = append(p.topics, topic)
		p.msgs = append(p.msgs, m)
	}
	return nil
}
func (p *capturePublisher) Close() error { return nil }

func newMemory(t *testing.T, cfg redelivery.Config) *redelivery.Redelivery {
	t.Helper()
	if cfg.ConsumerGroup == "" {
		cfg.ConsumerGroup, cfg.Handler = "g", "h"
	}
	cfg.Mode = redelivery.InMemory
	if cfg.Publisher == nil {
		cfg.Publisher = &capturePublisher{}
	}
	r, err := redelivery.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

type notAHook struct{}

func TestConfig_Validate_rejects_bad_configs_naming_the_field(t *testing.T) {
	pub := gochannel.NewGoChannel(gochannel.Config{}, nil)
	defer pub.Close()
	good := redelivery.Config{ConsumerGroup: "g", Handler: "h", Mode: redelivery.InMemory, Publisher: pub}
	cases := []struct {
		name   string
		mutate func(*redelivery.Config)
		want   []string // substrings naming the fields; empty = valid
	}{
		{name: "good in-memory", mutate: func(*redelivery.Config) {}},
		{name: "good native with a DLQ publisher", mutate: func(c *redelivery.Config) {
			c.Mode, c.Publisher, c.DeadLetterPublisher = redelivery.Native, nil, pub
		}},
		{name: "missing group, handler and mode", mutate: func(c *redelivery.Config) {
			c.ConsumerGroup, c.Handler, c.Mode = "", " ", redelivery.ModeUnset
		}, want: []string{"ConsumerGroup", "Handler", "Mode"}},
		{name: "in-memory without publisher", mutate: func(c *redelivery.Config) { c.Publisher = nil }, want: []string{"Publisher", "DeadLetterPublisher"}},
		{name: "native without DLQ publisher", mutate: func(c *redelivery.Config) { c.Mode, c.Publisher = redelivery.Native, nil }, want: []string{"DeadLetterPublisher"}},
		{name: "durable without store", mutate: func(c *redelivery.Config) { c.Mode = redelivery.Durable }, want: []string{"Store"}},
		{name: "unknown mode", mutate: func(c *redelivery.Config) { c.Mode = 9 }, want: []string{"Mode"}},
		{name: "bad policy", mutate: func(c *redelivery.Config) { c.Policy = policy.Policy{MaxAttempts: -1} }, want: []string{"Policy"}},
		{name: "same retry and DLQ topic", mutate: func(c *redelivery.Config) { c.RetryTopic, c.DeadLetterTopic = "x", "x" }, want: []string{"RetryTopic"}},
		{name: "negative durations", mutate: func(c *redelivery.Config) { c.PollInterval, c.PublishRetryInterval, c.ClaimBatch = -1, -1, -1 },
			want: []string{"PollInterval", "PublishRetryInterval", "ClaimBatch"}},
		{name: "a hook that implements nothing", mutate: func(c *redelivery.Config) { c.Hooks = []any{newHookRecorder(), notAHook{}} }, want: []string{"Hooks[1]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.mutate(&cfg)
			r, err := redelivery.New(cfg, nil)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				_ = r.Close()
				return
			}
			if !errors.Is(err, redelivery.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}
}

func TestNew_defaults_to_the_RocketMQ_policy_and_per_group_topics(t *testing.T) {
	r := newMemory(t, redelivery.Config{ConsumerGroup: "billing", Handler: "charge"})
	cfg := r.Config()
	if cfg.Policy.MaxAttempts != 17 || cfg.Policy.Delay(16) != policy.RocketMQ().Delay(16) {
		t.Fatalf("policy %+v", cfg.Policy)
	}
	if cfg.RetryTopic != "reliamq_retry_billing_charge" || cfg.DeadLetterTopic != "reliamq_dlq_billing" {
		t.Fatalf("topics %q %q", cfg.RetryTopic, cfg.DeadLetterTopic)
	}
	if redelivery.MaxReconsumeTimes(cfg.Policy) != 16 {
		t.Fatalf("MaxReconsumeTimes = %d", redelivery.MaxReconsumeTimes(cfg.Policy))
	}
}

func TestAddHandler_returns_an_error_instead_of_panicking_on_a_taken_name(t *testing.T) {
	r := newMemory(t, redelivery.Config{})
	router, err := message.NewRouter(message.RouterConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps := gochannel.NewGoChannel(gochannel.Config{}, nil)
	defer ps.Close()
	h := func(*message.Message) error { return nil }
	if _, err := r.AddConsumerHandler(router, "t", ps, h); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddConsumerHandler(router, "t", ps, h); !errors.Is(err, redelivery.ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	if _, err := r.AddConsumerHandler(router, "", nil, nil); !errors.Is(err, redelivery.ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	if n := len(router.Handlers()); n != 2 {
		t.Fatalf("router has %d handlers, want 2 (topic and retry topic)", n)
	}
}
