package redelivery_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/policy"
)

// Every config error reads "redelivery: invalid config: <Field>: <reason>"
// and matches ErrInvalidConfig (the field used to be followed by "is
// required" or its value, not a colon).
func TestNew_reports_each_config_problem_as_ErrInvalidConfig_naming_the_field(t *testing.T) {
	tests := []struct {
		name   string
		cfg    redelivery.Config
		fields []string
	}{
		{"nothing set", redelivery.Config{}, []string{"ConsumerGroup", "Handler", "Scheduler", "DeadLetterPublisher"}},
		{"durable without store or publisher", redelivery.Config{ConsumerGroup: "g", Handler: "h",
			Scheduler: redelivery.NewDurable(redelivery.DurableConfig{})},
			[]string{"Publisher", "DeadLetterPublisher"}},
		{"bad values", redelivery.Config{ConsumerGroup: "g", Handler: "h", Scheduler: redelivery.NewInMemory(redelivery.InMemoryConfig{}),
			Publisher: &fakepub.Publisher{}, Policy: policy.Policy{MaxAttempts: -1},
			RetryTopic: "same", DeadLetterTopic: "same", Hooks: []any{1, nil}},
			[]string{"Policy", "RetryTopic", "Hooks[0]", "Hooks[1]"}},
		{"bad durable scheduler config", redelivery.Config{ConsumerGroup: "g", Handler: "h", Publisher: &fakepub.Publisher{},
			Scheduler: redelivery.NewDurable(redelivery.DurableConfig{PollInterval: -time.Second, ClaimBatch: -1, PublishRetryInterval: -1})},
			[]string{"Scheduler: Store", "Scheduler: PollInterval", "Scheduler: ClaimBatch", "Scheduler: PublishRetryInterval"}},
		{"unknown route", redelivery.Config{ConsumerGroup: "g", Handler: "h", Scheduler: &subscriberScheduler{route: 42},
			DeadLetterPublisher: &fakepub.Publisher{}}, []string{"Scheduler"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := redelivery.New(tt.cfg, nil)
			if !errors.Is(err, redelivery.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, f := range tt.fields {
				if want := redelivery.ErrInvalidConfig.Error() + ": " + f + ":"; !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want a line %q...", err, want)
				}
			}
		})
	}
}

// Replay reports its config problems in the same shape, before it reads
// anything.
func TestReplay_reports_each_config_problem_as_ErrInvalidConfig_naming_the_field(t *testing.T) {
	var typedNil *fakepub.Publisher
	tests := []struct {
		name   string
		cfg    redelivery.ReplayConfig
		fields []string
	}{
		{"nothing set", redelivery.ReplayConfig{}, []string{"Publisher", "Messages"}},
		{"typed nil publisher", redelivery.ReplayConfig{Publisher: typedNil, Messages: make(chan *message.Message)}, []string{"Publisher"}},
		{"bad values", redelivery.ReplayConfig{Publisher: &fakepub.Publisher{}, Messages: make(chan *message.Message),
			ToOriginalTopic: true, RetryTopic: "r", Rate: -1, Limit: -2, Hooks: []any{"not a hook"}},
			[]string{"RetryTopic", "Rate", "Limit", "Hooks[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := redelivery.Replay(context.Background(), tt.cfg, nil)
			if !errors.Is(err, redelivery.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, f := range tt.fields {
				if want := redelivery.ErrInvalidConfig.Error() + ": " + f + ":"; !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want a line %q...", err, want)
				}
			}
		})
	}
}

// AddHandler reports a bad registration in the same shape.
func TestAddHandler_reports_each_registration_problem_as_ErrInvalidConfig_naming_the_field(t *testing.T) {
	r := newMemory(t, redelivery.Config{})
	_, err := r.AddHandler(nil, redelivery.HandlerRegistration{PublishTopic: "out"})
	if !errors.Is(err, redelivery.ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	for _, f := range []string{"router", "HandlerRegistration.Topic", "HandlerRegistration.Subscriber",
		"HandlerRegistration.HandlerFunc", "HandlerRegistration.PublishTopic"} {
		if want := redelivery.ErrInvalidConfig.Error() + ": " + f + ":"; !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want a line %q...", err, want)
		}
	}
}
