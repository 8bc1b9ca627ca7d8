package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrInvalidConfig matches (errors.Is) every error from ParseYAML, FromYAML,
// LoadFile, Config.ApplyEnv, Config.Policy and Policy.Validate that is caused
// by a bad value: "policy: invalid config: <key or Field>: <reason>", one per
// problem, joined with errors.Join.
var ErrInvalidConfig = errors.New("policy: invalid config")

// ConfigError is one bad configuration value. It names the key (as written in
// YAML, e.g. "max-attempts" or "schedule[2]") and, for environment overrides,
// the variable it came from. Several problems are reported together with
// errors.Join; use errors.As to reach each one.
type ConfigError struct {
	Key    string // YAML key, e.g. "init-interval"
	EnvVar string // environment variable, when the value came from one
	Err    error  // what is wrong
}

func (e *ConfigError) Error() string {
	if e.EnvVar != "" {
		return fmt.Sprintf("%v: %s (from %s): %v", ErrInvalidConfig, e.Key, e.EnvVar, e.Err)
	}
	return fmt.Sprintf("%v: %s: %v", ErrInvalidConfig, e.Key, e.Err)
}

// Unwrap returns the underlying problem.
func (e *ConfigError) Unwrap() error { return e.Err }

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Schedule names accepted by the schedule key.
const (
	ScheduleExponential = "exponential"
	ScheduleFixed       = "fixed"
	ScheduleRocketMQ    = "rocketmq"
	// ScheduleTable is set by Config when schedule is a list of delays.
	ScheduleTable = "table"
)

// Defaults for keys left out of a Config. They are Spring Cloud Stream's
// consumer retry defaults (maxAttempts 3, backOffInitialInterval 1000,
// backOffMultiplier 2.0, backOffMaxInterval 10000), so a Spring user gets what
// they expect.
const (
	DefaultMaxAttempts    = 3
	DefaultInitInterval   = time.Second
	DefaultMultiplier     = 2.0
	DefaultMaxInterval    = 10 * time.Second
	DefaultJitterFraction = 0.5
)

// Config is the configuration-file form of a Policy, with the key names a Spring
// Retry user knows. Pointer fields distinguish "not set" (nil, the default
// applies) from an explicit zero, which is then validated like any value.
//
// YAML keys (every one optional):
//
//	max-attempts:    attempts including the first; >= 1. Default 3, or 17 with
//	                 schedule: rocketmq.
//	init-interval:   first delay (exponential) or every delay (fixed); default 1000.
//	multiplier:      exponential growth factor, >= 1, fractions allowed; default 2.
//	max-interval:    cap on every delay; default 10000 for exponential, none for
//	                 the other schedules; 0 means no cap; must be >= init-interval
//	                 for the exponential schedule.
//	max-elapsed:     total time budget from the first attempt; default 0 (none).
//	schedule:        exponential (default) | fixed | rocketmq | a list of delays
//	                 (the last one repeats), e.g. ["10s", "30s", "1m"].
//	jitter:          none (default) | full | uniform.
//	jitter-fraction: half-width of uniform jitter in (0, 1]; default 0.5. Setting
//	                 it without jitter selects uniform jitter.
//
// Durations (the *-interval keys, max-elapsed and list items) are either an
// integer number of milliseconds, as in Spring (1000), or a Go duration string
// ("1s", "1m30s"). Unknown keys are rejected, so a typo never silently falls
// back to a default.
//
// A document may hold the keys at its top level or under a single "retry:" key
// (the seed service's layout, retry: {max-attempts: 3, init-interval: 1000,
// multiplier: 2}); a policy key next to "retry:" is refused as ambiguous, and
// so is a file of several YAML documents (separated by "---"), of which only
// one would be read. For any other layout, embed Config as a field of your own
// configuration struct: it implements yaml.Unmarshaler with the same rules.
type Config struct {
	MaxAttempts    *int           // max-attempts
	InitInterval   *time.Duration // init-interval
	Multiplier     *float64       // multiplier
	MaxInterval    *time.Duration // max-interval
	MaxElapsed     *time.Duration // max-elapsed
	Schedule       string         // schedule: "" (exponential), exponential, fixed, rocketmq or table
	Steps          []time.Duration
	Jitter         string   // jitter: "" (none), none, full or uniform
	JitterFraction *float64 // jitter-fraction
}

// configKeys lists the accepted keys in documentation order.
var configKeys = []string{
	"max-attempts", "init-interval", "multiplier", "max-interval", "max-elapsed",
	"schedule", "jitter", "jitter-fraction",
}

// ParseYAML reads a Config from a YAML document, either the keys themselves or
// a document with a top-level "retry:" block (its other siblings are ignored,
// but a policy key such as max-attempts next to retry: is refused: which one
// was meant?). Every bad key or value is reported at once, each as a
// *ConfigError. An empty document gives the zero Config (all defaults); a
// second YAML document (after "---") is refused.
func ParseYAML(data []byte) (Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, nil
		}
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var errs []error
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	case !emptyDocument(&next):
		errs = append(errs, &ConfigError{Key: "---", Err: fmt.Errorf(
			"line %d: a second YAML document; a policy file holds one (only the first would be read)", next.Line)})
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return Config{}, errors.Join(errs...)
	}
	root := doc.Content[0]
	if root.Kind == yaml.MappingNode {
		top := root
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value == "retry" {
				root = top.Content[i+1]
				break
			}
		}
		if root != top {
			for i := 0; i+1 < len(top.Content); i += 2 {
				if k := top.Content[i]; knownKey(k.Value) {
					errs = append(errs, &ConfigError{Key: k.Value, Err: fmt.Errorf(
						"line %d: top-level %s next to retry: is ambiguous; move it under retry: or remove one", k.Line, k.Value)})
				}
			}
		}
	}
	var c Config
	errs = append(errs, c.UnmarshalYAML(root))
	return c, errors.Join(errs...)
}

// emptyDocument reports whether a decoded document holds nothing (a
// trailing "---" with no content, or only a comment).
func emptyDocument(doc *yaml.Node) bool {
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return true
	}
	n := doc.Content[0]
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// FromYAML parses a YAML document (see Config) into a validated Policy.
func FromYAML(data []byte) (Policy, error) {
	c, perr := ParseYAML(data)
	if perr != nil && !hasConfigError(perr) {
		return Policy{}, perr // not YAML at all
	}
	// Check the values that did parse too, so one run reports every problem.
	p, verr := c.Policy()
	if err := errors.Join(perr, verr); err != nil {
		return Policy{}, err
	}
	return p, nil
}

func hasConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// LoadFile reads the YAML file at path (see Config) into a validated Policy.
// Use ParseYAML and Config.ApplyEnv to add environment overrides.
func LoadFile(path string) (Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("policy: %w", err)
	}
	return FromYAML(data)
}

// UnmarshalYAML implements yaml.Unmarshaler, so a Config can be a field of a
// larger configuration struct. A null node leaves c unchanged.
func (c *Config) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return &ConfigError{Key: "retry", Err: fmt.Errorf("line %d: must be a mapping of retry keys", node.Line)}
	}
	var errs []error
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, val := node.Content[i].Value, node.Content[i+1]
		if val.Kind == yaml.AliasNode {
			val = val.Alias
		}
		switch {
		case val.Kind == yaml.ScalarNode && val.Tag == "!!null":
			continue
		case key == "schedule" && val.Kind == yaml.SequenceNode:
			// An empty list is reported by Policy, like one set in Go.
			c.Schedule, c.Steps = ScheduleTable, nil
			for j, item := range val.Content {
				d, err := parseDuration(item.Value)
				if err == nil && d < 0 {
					err = fmt.Errorf("%v: must be >= 0", d)
				}
				if err != nil || item.Kind != yaml.ScalarNode {
					if err == nil {
						err = errors.New("must be a duration")
					}
					errs = append(errs, &ConfigError{Key: fmt.Sprintf("schedule[%d]", j), Err: err})
					continue
				}
				c.Steps = append(c.Steps, d)
			}
		case val.Kind != yaml.ScalarNode:
			if !knownKey(key) {
				errs = append(errs, &ConfigError{Key: key, Err: unknownKeyErr()})
				continue
			}
			errs = append(errs, &ConfigError{Key: key, Err: fmt.Errorf("line %d: must be a single value", val.Line)})
		default:
			if err := c.set(key, val.Value); err != nil {
				errs = append(errs, &ConfigError{Key: key, Err: err})
			}
		}
	}
	return errors.Join(errs...)
}

// ApplyEnv overrides c with environment variables named prefix + "_" + the key
// in upper case with "-" replaced by "_": with prefix "RELIAMQ_RETRY",
// RELIAMQ_RETRY_MAX_ATTEMPTS sets max-attempts. Values follow the YAML rules;
// RELIAMQ_RETRY_SCHEDULE also accepts a comma-separated list ("10s,30s,1m").
// An empty variable is ignored. lookup reads a variable (nil means
// os.LookupEnv), so tests need not touch the process environment. Every bad
// value is reported as a *ConfigError naming both the key and the variable.
func (c *Config) ApplyEnv(prefix string, lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	prefix = strings.TrimSuffix(prefix, "_")
	if prefix != "" {
		prefix += "_"
	}
	var errs []error
	for _, key := range configKeys {
		name := prefix + strings.ToUpper(strings.ReplaceAll(key, "-", "_"))
		v, ok := lookup(name)
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			continue
		}
		var err error
		if key == "schedule" && strings.Contains(v, ",") {
			err = c.setSteps(strings.Split(v, ","))
		} else {
			err = c.set(key, v)
		}
		if err != nil {
			errs = append(errs, &ConfigError{Key: key, EnvVar: name, Err: err})
		}
	}
	return errors.Join(errs...)
}

func (c *Config) setSteps(items []string) error {
	steps := make([]time.Duration, 0, len(items))
	for i, s := range items {
		d, err := parseDuration(strings.TrimSpace(s))
		if err == nil && d < 0 {
			err = fmt.Errorf("%v: must be >= 0", d)
		}
		if err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
		steps = append(steps, d)
	}
	c.Schedule, c.Steps = ScheduleTable, steps
	return nil
}

func knownKey(key string) bool {
	for _, k := range configKeys {
		if k == key {
			return true
		}
	}
	return false
}

func unknownKeyErr() error {
	return fmt.Errorf("unknown key (known keys: %s)", strings.Join(configKeys, ", "))
}

// set parses one scalar value; range checks happen in Policy so that values
// set in Go are checked the same way.
func (c *Config) set(key, v string) error {
	switch key {
	case "max-attempts":
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		c.MaxAttempts = &n
	case "init-interval", "max-interval", "max-elapsed":
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		switch key {
		case "init-interval":
			c.InitInterval = &d
		case "max-interval":
			c.MaxInterval = &d
		default:
			c.MaxElapsed = &d
		}
	case "multiplier", "jitter-fraction":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		if key == "multiplier" {
			c.Multiplier = &f
		} else {
			c.JitterFraction = &f
		}
	case "schedule":
		switch s := strings.ToLower(v); s {
		case ScheduleExponential, ScheduleFixed, ScheduleRocketMQ:
			c.Schedule, c.Steps = s, nil
		default:
			return fmt.Errorf("%q: must be exponential, fixed, rocketmq or a list of delays", v)
		}
	case "jitter":
		switch s := strings.ToLower(v); s {
		case "none", "full", "uniform":
			c.Jitter = s
		default:
			return fmt.Errorf("%q: must be none, full or uniform", v)
		}
	default:
		return unknownKeyErr()
	}
	return nil
}

// parseDuration reads an integer number of milliseconds or a Go duration string.
func parseDuration(v string) (time.Duration, error) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms > math.MaxInt64/int64(time.Millisecond) || ms < math.MinInt64/int64(time.Millisecond) {
			return 0, fmt.Errorf("%q milliseconds is out of range", v)
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is neither milliseconds nor a duration such as \"1s\"", v)
	}
	return d, nil
}

// Validate reports every invalid value of c, each as a *ConfigError naming its
// key. It is Policy without the result.
func (c Config) Validate() error {
	_, err := c.Policy()
	return err
}

// Policy applies the defaults (see Config), checks every value and returns the
// Policy. Every problem is reported at once, each as a *ConfigError naming its
// key: max-attempts < 1, negative durations, multiplier < 1 (including zero),
// max-interval below init-interval, an unknown schedule or jitter, an empty or
// negative schedule list, jitter-fraction outside (0, 1].
func (c Config) Policy() (Policy, error) {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: key, Err: fmt.Errorf(format, args...)})
	}

	schedule := c.Schedule
	if schedule == "" {
		schedule = ScheduleExponential
	}
	maxAttempts := DefaultMaxAttempts
	if schedule == ScheduleRocketMQ {
		maxAttempts = RocketMQRetries + 1
	}
	if c.MaxAttempts != nil {
		maxAttempts = *c.MaxAttempts
		if maxAttempts < 1 {
			bad("max-attempts", "%d: must be >= 1", maxAttempts)
		}
	}
	initInterval := DefaultInitInterval
	if c.InitInterval != nil {
		initInterval = *c.InitInterval
		if initInterval < 0 {
			bad("init-interval", "%v: must be >= 0", initInterval)
		}
	}
	multiplier := DefaultMultiplier
	if c.Multiplier != nil {
		multiplier = *c.Multiplier
		if math.IsNaN(multiplier) || math.IsInf(multiplier, 0) || multiplier < 1 {
			bad("multiplier", "%v: must be a number >= 1", multiplier)
		}
	}
	var maxInterval time.Duration
	if schedule == ScheduleExponential {
		maxInterval = DefaultMaxInterval
	}
	if c.MaxInterval != nil {
		maxInterval = *c.MaxInterval
		if maxInterval < 0 {
			bad("max-interval", "%v: must be >= 0 (0 means no cap)", maxInterval)
		}
	}
	if schedule == ScheduleExponential && maxInterval > 0 && initInterval >= 0 && maxInterval < initInterval {
		from := ""
		if c.MaxInterval == nil {
			from = " (the default)"
		}
		bad("max-interval", "%v%s: must be >= init-interval %v", maxInterval, from, initInterval)
	}
	var maxElapsed time.Duration
	if c.MaxElapsed != nil {
		maxElapsed = *c.MaxElapsed
		if maxElapsed < 0 {
			bad("max-elapsed", "%v: must be >= 0 (0 means no budget)", maxElapsed)
		}
	}

	p := Policy{MaxAttempts: maxAttempts, MaxElapsed: maxElapsed}
	switch schedule {
	case ScheduleExponential:
		p.Backoff = Exponential(initInterval, multiplier, maxInterval)
	case ScheduleFixed:
		p.Backoff = Fixed(initInterval)
		p.MaxDelay = maxInterval
	case ScheduleRocketMQ:
		p.Backoff = Table(rocketMQSteps...)
		p.MaxDelay = maxInterval
	case ScheduleTable:
		if len(c.Steps) == 0 {
			bad("schedule", "list of delays must not be empty")
		}
		for i, d := range c.Steps {
			if d < 0 {
				bad(fmt.Sprintf("schedule[%d]", i), "%v: must be >= 0", d)
			}
		}
		p.Backoff = Table(c.Steps...)
		p.MaxDelay = maxInterval
	default:
		bad("schedule", "%q: must be exponential, fixed, rocketmq or a list of delays", c.Schedule)
	}

	switch c.Jitter {
	case "":
		if c.JitterFraction != nil {
			p.Jitter = UniformJitter(*c.JitterFraction)
		}
	case "none":
	case "full":
		p.Jitter = FullJitter()
	case "uniform":
		p.Jitter = UniformJitter(DefaultJitterFraction)
		if c.JitterFraction != nil {
			p.Jitter.Fraction = *c.JitterFraction
		}
	default:
		bad("jitter", "%q: must be none, full or uniform", c.Jitter)
	}
	if p.Jitter.Mode == JitterUniform {
		if f := p.Jitter.Fraction; math.IsNaN(f) || f <= 0 || f > 1 {
			bad("jitter-fraction", "%v: must be in (0, 1]", f)
		}
	}

	if len(errs) > 0 {
		return Policy{}, errors.Join(errs...)
	}
	if err := p.Validate(); err != nil {
		// Unreachable with the checks above; kept so a future key can not
		// produce an invalid Policy unnoticed.
		return Policy{}, &ConfigError{Key: "retry", Err: err}
	}
	return p, nil
}
