package retry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

// Every config error reads "retry: invalid config: <Field>: <reason>" and
// matches ErrInvalidConfig, from NewPublisher and from Validate alike (the
// fields used to read "field Policy", and Validate matched no sentinel).
func TestNewPublisher_reports_each_config_problem_as_ErrInvalidConfig_naming_the_field(t *testing.T) {
	inner := gochannel.NewGoChannel(gochannel.Config{}, nil)
	defer inner.Close()
	tests := []struct {
		name   string
		cfg    retry.Config
		fields []string
	}{
		{"zero policy", retry.Config{}, []string{"Policy"}},
		{"bad policy and hooks", retry.Config{Policy: policy.Policy{MaxAttempts: -1}, Hooks: []any{1, "x"}}, []string{"Policy", "Hooks[0]", "Hooks[1]"}},
		{"nil hook after a good one", retry.Config{Policy: policy.RocketMQ(), Hooks: []any{&countingRetryHook{}, nil}}, []string{"Hooks[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := retry.NewPublisher(inner, tt.cfg, nil)
			verr := tt.cfg.Validate()
			for _, e := range []error{err, verr} {
				if !errors.Is(e, retry.ErrInvalidConfig) {
					t.Fatalf("err = %v, want ErrInvalidConfig", e)
				}
				for _, f := range tt.fields {
					if want := retry.ErrInvalidConfig.Error() + ": " + f + ":"; !strings.Contains(e.Error(), want) {
						t.Errorf("err = %v, want a line %q...", e, want)
					}
				}
			}
		})
	}
}
