package fallback_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/pkg/policy"
)

// Every config error reads "fallback: invalid config: <Field>: <reason>" and
// matches ErrInvalidConfig, each problem of a joined error included (the
// second one used to lack the sentinel's text).
func TestConstructors_report_each_config_problem_as_ErrInvalidConfig_naming_the_field(t *testing.T) {
	tests := []struct {
		name   string
		ctor   func() error
		fields []string
	}{
		{"NewPublisher", func() error {
			_, err := fallback.NewPublisher(&fakepub.Publisher{}, fallback.Config{Queue: "a\x00", StoreTimeout: -1, Hooks: []any{1}}, nil)
			return err
		}, []string{"Store", "Queue", "StoreTimeout", "Hooks[0]"}},
		{"NewRelay", func() error {
			_, err := fallback.NewRelay(fallback.RelayConfig{Policy: policy.Policy{MaxAttempts: -1}, BatchSize: -1, Concurrency: -1,
				PollInterval: -1, FailureThreshold: -1, StoreTimeout: -1, Hooks: []any{nil}}, nil)
			return err
		}, []string{"Store", "Publisher", "Policy", "BatchSize", "Concurrency", "PollInterval", "FailureThreshold", "StoreTimeout", "Hooks[0]"}},
		{"NewOutbox", func() error {
			_, err := fallback.NewOutbox(fallback.OutboxConfig{Queue: "a\x00"})
			return err
		}, []string{"Store", "Queue"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ctor()
			if !errors.Is(err, fallback.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, f := range tt.fields {
				if want := fallback.ErrInvalidConfig.Error() + ": " + f + ":"; !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want a line %q...", err, want)
				}
			}
		})
	}
}
