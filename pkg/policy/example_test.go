package policy_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/reliamq/reliamq/pkg/policy"
)

func ExampleFromYAML() {
	// The seed service's block, as a Spring Retry user writes it.
	p, err := policy.FromYAML([]byte(`
retry:
  max-attempts: 4
  init-interval: 1000   # milliseconds
  multiplier: 1.5
  max-interval: 3s      # a duration string works too
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.MaxAttempts, p.Schedule(p.Retries()), p.Delay(10))
	// Output:
	// 4 [1s 1.5s 2.25s] 3s
}

func ExampleFromYAML_invalid() {
	_, err := policy.FromYAML([]byte("max-attempts: 0\nmultiplier: 0\nschedule: fibonacci\n"))
	fmt.Println(errors.Is(err, policy.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// policy: invalid config: schedule: "fibonacci": must be exponential, fixed, rocketmq or a list of delays
	// policy: invalid config: max-attempts: 0: must be >= 1
	// policy: invalid config: multiplier: 0: must be a number >= 1
}

func ExampleConfig_ApplyEnv() {
	cfg, _ := policy.ParseYAML([]byte("schedule: rocketmq"))
	env := map[string]string{"RELIAMQ_RETRY_MAX_ATTEMPTS": "20"}
	if err := cfg.ApplyEnv("RELIAMQ_RETRY", func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		fmt.Println(err)
		return
	}
	p, _ := cfg.Policy()
	fmt.Println(p.MaxAttempts, p.Delay(16), p.Delay(19))
	// Output:
	// 20 2h0m0s 2h0m0s
}

func ExamplePolicy_JitteredDelay() {
	p := policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(10 * time.Second), Jitter: policy.UniformJitter(0.2)}
	// The caller draws u in [0, 1); the retry middleware uses math/rand/v2.
	for _, u := range []float64{0, 0.5, 0.999} {
		fmt.Println(p.JitteredDelay(1, u).Round(time.Millisecond))
	}
	// Output:
	// 8s
	// 10s
	// 11.996s
}
