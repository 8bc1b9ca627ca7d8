package redelivery_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/policy"
)

func newMemory(t *testing.T, cfg redelivery.Config) *redelivery.Redelivery {
	t.Helper()
	if cfg.ConsumerGroup == "" {
		cfg.ConsumerGroup, cfg.Handler = "g", "h"
	}
	if cfg.Scheduler == nil {
		cfg.Scheduler = redelivery.NewInMemory(redelivery.InMemoryConfig{})
	}
	if cfg.Publisher == nil {
		cfg.Publisher = &fakepub.Publisher{}
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
	good := redelivery.Config{ConsumerGroup: "g", Handler: "h", Publisher: pub}
	cases := []struct {
		name   string
		mutate func(*redelivery.Config)
		want   []string // substrings naming the fields; empty = valid
	}{
		{name: "good in-memory", mutate: func(*redelivery.Config) {}},
		{name: "good by-subscriber with a DLQ publisher", mutate: func(c *redelivery.Config) {
			c.Scheduler, c.Publisher, c.DeadLetterPublisher = &subscriberScheduler{}, nil, pub
		}},
		{name: "missing group, handler and scheduler", mutate: func(c *redelivery.Config) {
			c.ConsumerGroup, c.Handler, c.Scheduler = "", " ", nil
		}, want: []string{"ConsumerGroup", "Handler", "Scheduler"}},
		{name: "a typed nil scheduler", mutate: func(c *redelivery.Config) { c.Scheduler = (*redelivery.InMemory)(nil) }, want: []string{"Scheduler"}},
		{name: "in-memory without publisher", mutate: func(c *redelivery.Config) { c.Publisher = nil }, want: []string{"Publisher", "DeadLetterPublisher"}},
		{name: "by-subscriber without DLQ publisher", mutate: func(c *redelivery.Config) { c.Scheduler, c.Publisher = &subscriberScheduler{}, nil }, want: []string{"DeadLetterPublisher"}},
		{name: "durable without store", mutate: func(c *redelivery.Config) { c.Scheduler = redelivery.NewDurable(redelivery.DurableConfig{}) }, want: []string{"Scheduler: Store"}},
		{name: "unknown route", mutate: func(c *redelivery.Config) { c.Scheduler = &subscriberScheduler{route: 9} }, want: []string{"Scheduler"}},
		{name: "bad policy", mutate: func(c *redelivery.Config) { c.Policy = policy.Policy{MaxAttempts: -1} }, want: []string{"Policy"}},
		{name: "same retry and DLQ topic", mutate: func(c *redelivery.Config) { c.RetryTopic, c.DeadLetterTopic = "x", "x" }, want: []string{"RetryTopic"}},
		{name: "negative durable durations", mutate: func(c *redelivery.Config) {
			c.Scheduler = redelivery.NewDurable(redelivery.DurableConfig{Store: newSQLiteStore(t, nil), PollInterval: -1, PublishRetryInterval: -1, ClaimBatch: -1})
		}, want: []string{"Scheduler: PollInterval", "Scheduler: PublishRetryInterval", "Scheduler: ClaimBatch"}},
		{name: "negative in-memory publish retry interval", mutate: func(c *redelivery.Config) {
			c.Scheduler = redelivery.NewInMemory(redelivery.InMemoryConfig{PublishRetryInterval: -1})
		}, want: []string{"Scheduler: PublishRetryInterval"}},
		{name: "a hook that implements nothing", mutate: func(c *redelivery.Config) { c.Hooks = []any{newHookRecorder(), notAHook{}} }, want: []string{"Hooks[1]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			cfg.Scheduler = redelivery.NewInMemory(redelivery.InMemoryConfig{})
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

func TestNew_refuses_a_scheduler_that_already_serves_another_Redelivery(t *testing.T) {
	for _, sched := range []redelivery.Scheduler{
		redelivery.NewInMemory(redelivery.InMemoryConfig{}),
		redelivery.NewDurable(redelivery.DurableConfig{Store: newSQLiteStore(t, nil)}),
	} {
		cfg := redelivery.Config{ConsumerGroup: "g", Handler: "h", Publisher: &fakepub.Publisher{}, Scheduler: sched}
		first, err := redelivery.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Handler = "h2"
		if _, err := redelivery.New(cfg, nil); !errors.Is(err, redelivery.ErrInvalidConfig) || !strings.Contains(err.Error(), "Scheduler:") {
			t.Errorf("%T: second New: err = %v, want ErrInvalidConfig naming Scheduler", sched, err)
		}
		_ = first.Close()
	}
}
