package policy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reliamq/reliamq/pkg/policy"
)

// Every error of Policy.Validate reads "policy: invalid config: <Field>:
// <reason>" and matches ErrInvalidConfig (it used to match no sentinel).
func TestPolicy_Validate_reports_each_problem_as_ErrInvalidConfig_naming_the_field(t *testing.T) {
	tests := []struct {
		name   string
		p      policy.Policy
		fields []string
	}{
		{"busy loop", policy.Policy{}, []string{"MaxAttempts"}},
		{"negatives", policy.Policy{MaxAttempts: -1, MaxElapsed: -1, MaxDelay: -1}, []string{"MaxAttempts", "MaxElapsed", "MaxDelay"}},
		{"bad backoff and jitter", policy.Policy{MaxAttempts: 2, Backoff: policy.Exponential(-1, 0, 0), Jitter: policy.UniformJitter(2)},
			[]string{"Backoff", "Jitter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if !errors.Is(err, policy.ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			for _, f := range tt.fields {
				if want := policy.ErrInvalidConfig.Error() + ": " + f + ":"; !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want a line %q...", err, want)
				}
			}
		})
	}
	var ce *policy.ConfigError
	if _, err := policy.FromYAML([]byte("max-attempts: 0\n")); !errors.As(err, &ce) ||
		!strings.HasPrefix(err.Error(), policy.ErrInvalidConfig.Error()+": max-attempts:") {
		t.Errorf("FromYAML = %v, want a ConfigError reading %q...", err, policy.ErrInvalidConfig.Error()+": max-attempts:")
	}
}

// Regression: a file of several YAML documents loaded the first one and
// silently ignored the rest.
func TestFromYAML_refuses_a_file_of_several_documents(t *testing.T) {
	for _, doc := range []string{
		"max-attempts: 3\n---\nmax-attempts: 5\n",
		"retry:\n  max-attempts: 3\n---\nretry:\n  multiplier: 3\n",
		"---\nmax-attempts: 3\n--- \ninit-interval: 10\n",
	} {
		_, err := policy.FromYAML([]byte(doc))
		var ce *policy.ConfigError
		if !errors.Is(err, policy.ErrInvalidConfig) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "second YAML document") {
			t.Errorf("FromYAML(%q) = %v, want a ConfigError about the second document", doc, err)
		}
	}
	// A leading separator, or a trailing one with nothing after it, is one document.
	for _, doc := range []string{"---\nmax-attempts: 4\n", "max-attempts: 4\n---\n", "max-attempts: 4\n---\n# nothing\n"} {
		p, err := policy.FromYAML([]byte(doc))
		if err != nil || p.MaxAttempts != 4 {
			t.Errorf("FromYAML(%q) = %+v, %v, want max-attempts 4", doc, p, err)
		}
	}
}

// Regression: a top-level max-attempts next to retry: was silently
// overridden by the retry block.
func TestFromYAML_refuses_a_policy_key_next_to_retry_naming_both(t *testing.T) {
	_, err := policy.FromYAML([]byte("max-attempts: 5\nservice: comments\nretry:\n  max-attempts: 3\n  init-interval: 1000\n"))
	var ce *policy.ConfigError
	if !errors.Is(err, policy.ErrInvalidConfig) || !errors.As(err, &ce) || ce.Key != "max-attempts" ||
		!strings.Contains(err.Error(), "retry:") {
		t.Fatalf("FromYAML = %v, want a ConfigError for max-attempts naming retry:", err)
	}
	// Other siblings of retry: are the application's own configuration.
	p, err := policy.FromYAML([]byte("service: comments\nport: 8080\nretry:\n  max-attempts: 3\n  init-interval: 1000\n"))
	if err != nil || p.MaxAttempts != 3 || p.Delay(1) != time.Second {
		t.Fatalf("FromYAML = %+v, %v, want the retry block", p, err)
	}
}
