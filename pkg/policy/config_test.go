package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/reliamq/reliamq/pkg/policy"
)

// configErrorKeys returns the sorted keys of every *ConfigError in err's tree.
func configErrorKeys(t *testing.T, err error) []string {
	t.Helper()
	var keys []string
	var walk func(error)
	walk = func(e error) {
		if ce, ok := e.(*policy.ConfigError); ok {
			keys = append(keys, ce.Key)
			return
		}
		switch w := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range w.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(w.Unwrap())
		}
	}
	walk(err)
	sort.Strings(keys)
	return keys
}

func schedule(t *testing.T, p policy.Policy, k int) []time.Duration {
	t.Helper()
	return p.Schedule(k)
}

func TestFromYAML_accepts_the_seed_service_retry_block(t *testing.T) {
	p, err := policy.FromYAML([]byte(`
service: orders
retry:
  max-attempts: 3
  init-interval: 1000
  multiplier: 2
`))
	if err != nil {
		t.Fatalf("FromYAML: %v", err)
	}
	if p.MaxAttempts != 3 {
		t.Fatalf("MaxAttempts = %d; want 3", p.MaxAttempts)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, schedule(t, p, 5)); diff != "" {
		t.Fatalf("schedule (-want +got):\n%s", diff)
	}
}

func TestFromYAML_good_documents(t *testing.T) {
	tests := []struct {
		name     string
		doc      string
		attempts int
		elapsed  time.Duration
		delays   []time.Duration // first 4
		jitter   policy.Jitter
	}{
		{
			name:     "empty document gives the Spring defaults",
			doc:      ``,
			attempts: 3,
			delays:   []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second},
		},
		{
			name:     "top-level keys, fractional multiplier, max-interval in ms",
			doc:      "max-attempts: 5\ninit-interval: 100\nmultiplier: 1.5\nmax-interval: 300",
			attempts: 5,
			delays:   []time.Duration{100 * time.Millisecond, 150 * time.Millisecond, 225 * time.Millisecond, 300 * time.Millisecond},
		},
		{
			name:     "duration strings",
			doc:      "init-interval: 2s\nmax-interval: 1m\nmax-elapsed: 1h30m",
			attempts: 3,
			elapsed:  90 * time.Minute,
			delays:   []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second},
		},
		{
			name:     "max-interval 0 means no cap",
			doc:      "init-interval: 10s\nmax-interval: 0",
			attempts: 3,
			delays:   []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second},
		},
		{
			name:     "fixed",
			doc:      "schedule: fixed\ninit-interval: 250",
			attempts: 3,
			delays:   []time.Duration{250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond},
		},
		{
			name:     "rocketmq defaults to 17 attempts",
			doc:      "schedule: rocketmq",
			attempts: 17,
			delays:   []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute},
		},
		{
			name:     "rocketmq with a cap",
			doc:      "schedule: RocketMQ\nmax-attempts: 20\nmax-interval: 45s",
			attempts: 20,
			delays:   []time.Duration{10 * time.Second, 30 * time.Second, 45 * time.Second, 45 * time.Second},
		},
		{
			name:     "explicit list repeats its last step",
			doc:      "schedule: [\"10s\", 30s, 60000]\nmax-attempts: 6",
			attempts: 6,
			delays:   []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, time.Minute},
		},
		{
			name:     "full jitter",
			doc:      "jitter: full",
			attempts: 3,
			delays:   []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second},
			jitter:   policy.FullJitter(),
		},
		{
			name:     "uniform jitter default fraction",
			doc:      "jitter: uniform",
			attempts: 3,
			delays:   []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second},
			jitter:   policy.UniformJitter(policy.DefaultJitterFraction),
		},
		{
			name:     "jitter-fraction alone selects uniform",
			doc:      "jitter-fraction: 0.1",
			attempts: 3,
			delays:   []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second},
			jitter:   policy.UniformJitter(0.1),
		},
		{
			name:     "null values keep defaults",
			doc:      "max-attempts:\nmultiplier: ~\n",
			attempts: 3,
			delays:   []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.FromYAML([]byte(tt.doc))
			if err != nil {
				t.Fatalf("FromYAML: %v", err)
			}
			if p.MaxAttempts != tt.attempts {
				t.Errorf("MaxAttempts = %d; want %d", p.MaxAttempts, tt.attempts)
			}
			if p.MaxElapsed != tt.elapsed {
				t.Errorf("MaxElapsed = %v; want %v", p.MaxElapsed, tt.elapsed)
			}
			if diff := cmp.Diff(tt.delays, p.Schedule(4)); diff != "" {
				t.Errorf("schedule (-want +got):\n%s", diff)
			}
			if p.Jitter != tt.jitter {
				t.Errorf("Jitter = %+v; want %+v", p.Jitter, tt.jitter)
			}
			if err := p.Validate(); err != nil {
				t.Errorf("policy from config fails Validate: %v", err)
			}
		})
	}
}

func TestFromYAML_rejects_bad_values_naming_each_key(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		keys []string
	}{
		{"zero attempts", "max-attempts: 0", []string{"max-attempts"}},
		{"negative attempts", "max-attempts: -2", []string{"max-attempts"}},
		{"attempts not a number", "max-attempts: three", []string{"max-attempts"}},
		{"negative init-interval", "init-interval: -5", []string{"init-interval"}},
		{"init-interval garbage", "init-interval: soon", []string{"init-interval"}},
		{"zero multiplier", "multiplier: 0", []string{"multiplier"}},
		{"shrinking multiplier", "multiplier: 0.5", []string{"multiplier"}},
		{"max below initial", "init-interval: 5000\nmax-interval: 1000", []string{"max-interval"}},
		{"default max below initial", "init-interval: 20s", []string{"max-interval"}},
		{"negative max-interval", "max-interval: -1", []string{"max-interval"}},
		{"negative max-elapsed", "max-elapsed: -1s", []string{"max-elapsed"}},
		{"unknown schedule", "schedule: fibonacci", []string{"schedule"}},
		{"empty schedule list", "schedule: []", []string{"schedule"}},
		{"bad schedule item", "schedule: [10s, later, -1s]", []string{"schedule[1]", "schedule[2]"}},
		{"unknown jitter", "jitter: some", []string{"jitter"}},
		{"jitter fraction above one", "jitter: uniform\njitter-fraction: 1.5", []string{"jitter-fraction"}},
		{"unknown key", "max-atempts: 3", []string{"max-atempts"}},
		{"nested value", "max-attempts: {a: 1}", []string{"max-attempts"}},
		{"retry block is not a mapping", "retry: 3", []string{"retry"}},
		{"every problem at once", "retry:\n  max-attempts: 0\n  multiplier: 0\n  init-interval: -1\n  jitter: loud\n  colour: red",
			[]string{"colour", "init-interval", "jitter", "max-attempts", "multiplier"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.FromYAML([]byte(tt.doc))
			if !errors.Is(err, policy.ErrInvalidConfig) {
				t.Fatalf("FromYAML error = %v; want ErrInvalidConfig", err)
			}
			if diff := cmp.Diff(tt.keys, configErrorKeys(t, err)); diff != "" {
				t.Fatalf("keys named (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func TestFromYAML_rejects_malformed_yaml(t *testing.T) {
	_, err := policy.FromYAML([]byte("max-attempts: [3"))
	if !errors.Is(err, policy.ErrInvalidConfig) {
		t.Fatalf("error = %v; want ErrInvalidConfig", err)
	}
}

func TestConfig_can_be_embedded_in_a_service_config(t *testing.T) {
	var svc struct {
		Producer struct {
			Retry policy.Config `yaml:"send-retry"`
		} `yaml:"producer"`
	}
	doc := "producer:\n  send-retry:\n    max-attempts: 4\n    schedule: fixed\n    init-interval: 2s\n"
	if err := yaml.Unmarshal([]byte(doc), &svc); err != nil {
		t.Fatalf("yaml.Unmarshal: %v", err)
	}
	p, err := svc.Producer.Retry.Policy()
	if err != nil {
		t.Fatalf("Policy: %v", err)
	}
	if p.MaxAttempts != 4 || p.Delay(3) != 2*time.Second {
		t.Fatalf("MaxAttempts %d Delay(3) %v; want 4 and 2s", p.MaxAttempts, p.Delay(3))
	}

	bad := "producer:\n  send-retry:\n    max-attempts: x\n"
	err = yaml.Unmarshal([]byte(bad), &svc)
	if !errors.Is(err, policy.ErrInvalidConfig) {
		t.Fatalf("embedded bad value: error = %v; want ErrInvalidConfig", err)
	}
}

func fakeEnv(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestConfig_apply_env_overrides_yaml(t *testing.T) {
	c, err := policy.ParseYAML([]byte("retry: {max-attempts: 3, init-interval: 1000, multiplier: 2}"))
	if err != nil {
		t.Fatalf("ParseYAML: %v", err)
	}
	env := fakeEnv(map[string]string{
		"RELIAMQ_RETRY_MAX_ATTEMPTS":  "7",
		"RELIAMQ_RETRY_INIT_INTERVAL": "500ms",
		"RELIAMQ_RETRY_MULTIPLIER":    "3",
		"RELIAMQ_RETRY_MAX_INTERVAL":  "",        // empty: ignored
		"OTHER_MAX_ATTEMPTS":          "999",     // other prefix: ignored
		"RELIAMQ_RETRY_JITTER":        "uniform", // default fraction
	})
	if err := c.ApplyEnv("RELIAMQ_RETRY", env); err != nil {
		t.Fatalf("ApplyEnv: %v", err)
	}
	p, err := c.Policy()
	if err != nil {
		t.Fatalf("Policy: %v", err)
	}
	if p.MaxAttempts != 7 {
		t.Fatalf("MaxAttempts = %d; want 7", p.MaxAttempts)
	}
	want := []time.Duration{500 * time.Millisecond, 1500 * time.Millisecond, 4500 * time.Millisecond, 10 * time.Second}
	if diff := cmp.Diff(want, p.Schedule(4)); diff != "" {
		t.Fatalf("schedule (-want +got):\n%s", diff)
	}
	if p.Jitter != policy.UniformJitter(policy.DefaultJitterFraction) {
		t.Fatalf("Jitter = %+v", p.Jitter)
	}
}

func TestConfig_apply_env_schedule_list(t *testing.T) {
	var c policy.Config
	if err := c.ApplyEnv("APP_RETRY_", fakeEnv(map[string]string{"APP_RETRY_SCHEDULE": "1s, 2s,5000"})); err != nil {
		t.Fatalf("ApplyEnv: %v", err)
	}
	p, err := c.Policy()
	if err != nil {
		t.Fatalf("Policy: %v", err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 5 * time.Second}
	if diff := cmp.Diff(want, p.Schedule(4)); diff != "" {
		t.Fatalf("schedule (-want +got):\n%s", diff)
	}
}

func TestConfig_apply_env_names_the_variable_of_each_bad_value(t *testing.T) {
	var c policy.Config
	err := c.ApplyEnv("RELIAMQ_RETRY", fakeEnv(map[string]string{
		"RELIAMQ_RETRY_MAX_ATTEMPTS": "many",
		"RELIAMQ_RETRY_SCHEDULE":     "1s,oops",
	}))
	if !errors.Is(err, policy.ErrInvalidConfig) {
		t.Fatalf("error = %v; want ErrInvalidConfig", err)
	}
	if diff := cmp.Diff([]string{"max-attempts", "schedule"}, configErrorKeys(t, err)); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	var ce *policy.ConfigError
	if !errors.As(err, &ce) || ce.EnvVar == "" {
		t.Fatalf("ConfigError without EnvVar: %v", err)
	}
}

func TestConfig_env_values_are_validated_like_yaml(t *testing.T) {
	var c policy.Config
	if err := c.ApplyEnv("X", fakeEnv(map[string]string{"X_MAX_ATTEMPTS": "0"})); err != nil {
		t.Fatalf("ApplyEnv parses 0: %v", err)
	}
	err := c.Validate()
	if diff := cmp.Diff([]string{"max-attempts"}, configErrorKeys(t, err)); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
}

func TestLoadFile_reads_yaml(t *testing.T) {
	path := filepath.Join(t.TempDir(), "retry.yaml")
	if err := os.WriteFile(path, []byte("schedule: rocketmq\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.LoadFile(path)
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if diff := cmp.Diff(policy.RocketMQ().Schedule(20), p.Schedule(20)); diff != "" {
		t.Fatalf("schedule (-want +got):\n%s", diff)
	}
	if _, err := policy.LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: error = %v; want os.ErrNotExist", err)
	}
}
