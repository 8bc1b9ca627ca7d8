package policy_test

import (
	"errors"
	"testing"

	"github.com/reliamq/reliamq/pkg/policy"
)

// FuzzFromYAML checks that any document gives either a valid Policy or an
// ErrInvalidConfig error, never a panic or an invalid Policy.
func FuzzFromYAML(f *testing.F) {
	for _, seed := range []string{
		"", "retry: {max-attempts: 3, init-interval: 1000, multiplier: 2}",
		"schedule: [10s, 30s, 60000]", "schedule: rocketmq\nmax-interval: 1m",
		"jitter: uniform\njitter-fraction: 0.3", "max-elapsed: 1h\ninit-interval: 9223372036854775807",
		"multiplier: 1e308\ninit-interval: 1h\nmax-interval: 0", "retry: [1, 2]", "max-attempts: &a 3\nmultiplier: *a",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := policy.FromYAML(doc)
		if err != nil {
			if !errors.Is(err, policy.ErrInvalidConfig) {
				t.Fatalf("error %v does not match ErrInvalidConfig", err)
			}
			return
		}
		if verr := p.Validate(); verr != nil {
			t.Fatalf("FromYAML returned an invalid policy: %v", verr)
		}
		for n := 1; n <= 40; n++ {
			if d := p.Delay(n); d < 0 {
				t.Fatalf("Delay(%d) = %v", n, d)
			}
		}
	})
}
