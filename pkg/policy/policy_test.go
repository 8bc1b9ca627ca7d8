package policy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/pkg/policy"
)

func ExamplePolicy_Schedule() {
	p := policy.RocketMQ()
	var total time.Duration
	for i, d := range p.Schedule(p.Retries()) {
		total += d
		fmt.Printf("retry %2d after %-5v (total %v)\n", i+1, d, total)
	}
	fmt.Println("retry 17 would wait", p.Delay(17))
	// Output:
	// retry  1 after 10s   (total 10s)
	// retry  2 after 30s   (total 40s)
	// retry  3 after 1m0s  (total 1m40s)
	// retry  4 after 2m0s  (total 3m40s)
	// retry  5 after 3m0s  (total 6m40s)
	// retry  6 after 4m0s  (total 10m40s)
	// retry  7 after 5m0s  (total 15m40s)
	// retry  8 after 6m0s  (total 21m40s)
	// retry  9 after 7m0s  (total 28m40s)
	// retry 10 after 8m0s  (total 36m40s)
	// retry 11 after 9m0s  (total 45m40s)
	// retry 12 after 10m0s (total 55m40s)
	// retry 13 after 20m0s (total 1h15m40s)
	// retry 14 after 30m0s (total 1h45m40s)
	// retry 15 after 1h0m0s (total 2h45m40s)
	// retry 16 after 2h0m0s (total 4h45m40s)
	// retry 17 would wait 2h0m0s
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

func TestRocketMQ_matches_the_broker_consumer_schedule(t *testing.T) {
	p := policy.RocketMQ()
	if p.MaxAttempts != 17 || p.Retries() != 16 {
		t.Fatalf("MaxAttempts = %d, Retries = %d; want 17 and 16", p.MaxAttempts, p.Retries())
	}
	want := []time.Duration{
		10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 3 * time.Minute,
		4 * time.Minute, 5 * time.Minute, 6 * time.Minute, 7 * time.Minute, 8 * time.Minute,
		9 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
	}
	if diff := cmp.Diff(want, p.Schedule(16)); diff != "" {
		t.Fatalf("Schedule(16) (-want +got):\n%s", diff)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestRocketMQ_sixteen_retries_sum_to_4h46m(t *testing.T) {
	// The broker's documented total is 4h46m; the exact sum is 4h45m40s, which
	// rounds to 4h46m at minute precision.
	got := sum(policy.RocketMQ().Schedule(16))
	if got.Round(time.Minute) != 4*time.Hour+46*time.Minute {
		t.Fatalf("sum of 16 retries = %v; want 4h46m", got)
	}
	if got != 4*time.Hour+45*time.Minute+40*time.Second {
		t.Fatalf("exact sum = %v; want 4h45m40s", got)
	}
}

func TestRocketMQ_retries_past_the_sixteenth_wait_two_hours(t *testing.T) {
	p := policy.RocketMQ()
	p.MaxAttempts = 30
	for n := 16; n <= 29; n++ {
		if d := p.Delay(n); d != 2*time.Hour {
			t.Fatalf("Delay(%d) = %v; want 2h", n, d)
		}
	}
	if d := p.Delay(1); d != 10*time.Second {
		t.Fatalf("Delay(1) = %v; want 10s", d)
	}
}

func TestExponential_fractional_multiplier_grows_by_that_factor(t *testing.T) {
	p := policy.Policy{MaxAttempts: 6, Backoff: policy.Exponential(100*time.Millisecond, 1.5, 0)}
	want := []time.Duration{100 * time.Millisecond, 150 * time.Millisecond, 225 * time.Millisecond,
		337500 * time.Microsecond, 506250 * time.Microsecond}
	if diff := cmp.Diff(want, p.Schedule(5)); diff != "" {
		t.Fatalf("Schedule(5) (-want +got):\n%s", diff)
	}
}

func TestExponential_spring_style_seed_config(t *testing.T) {
	p := policy.Policy{MaxAttempts: 3, Backoff: policy.Exponential(time.Second, 2, 10*time.Second)}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, p.Schedule(6)); diff != "" {
		t.Fatalf("Schedule(6) (-want +got):\n%s", diff)
	}
}

func TestExponential_does_not_overflow_for_huge_retry_numbers(t *testing.T) {
	tests := []struct {
		name string
		b    policy.Backoff
		want time.Duration
	}{
		{"capped", policy.Exponential(time.Second, 2, time.Hour), time.Hour},
		{"uncapped", policy.Exponential(time.Second, 2, 0), time.Duration(math.MaxInt64)},
		{"huge multiplier", policy.Exponential(time.Hour, 1e300, 0), time.Duration(math.MaxInt64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []int{64, 100, 1000, math.MaxInt32, math.MaxInt} {
				if got := tt.b.Delay(n); got != tt.want {
					t.Fatalf("Delay(%d) = %v; want %v", n, got, tt.want)
				}
			}
		})
	}
}

// Property: exponential schedules never decrease, never exceed their max, and
// start at the initial interval.
func TestExponential_property_monotonic_and_capped(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		initial := time.Duration(r.Int64N(int64(10 * time.Second)))
		mult := 1 + r.Float64()*4
		max := time.Duration(0)
		if r.IntN(2) == 0 {
			max = initial + time.Duration(r.Int64N(int64(time.Hour)))
		}
		p := policy.Policy{MaxAttempts: 1, Backoff: policy.Exponential(initial, mult, max)}
		if err := p.Validate(); err != nil {
			t.Fatalf("generated policy invalid: %v", err)
		}
		s := p.Schedule(80)
		if s[0] != initial && !(max > 0 && initial > max) {
			t.Fatalf("case %d: first delay %v; want initial %v", i, s[0], initial)
		}
		for n := 1; n < len(s); n++ {
			if s[n] < s[n-1] {
				t.Fatalf("case %d (initial %v x%v max %v): delay %d = %v < delay %d = %v", i, initial, mult, max, n+1, s[n], n, s[n-1])
			}
			if max > 0 && s[n] > max {
				t.Fatalf("case %d: delay %d = %v above max %v", i, n+1, s[n], max)
			}
		}
	}
}

// Property: a table gives its steps in order, then repeats the last one.
func TestTable_property_repeats_last_step(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 500; i++ {
		steps := make([]time.Duration, 1+r.IntN(20))
		for j := range steps {
			steps[j] = time.Duration(r.Int64N(int64(time.Hour)))
		}
		b := policy.Table(steps...)
		for n := 1; n <= len(steps)+10; n++ {
			want := steps[min(n, len(steps))-1]
			if got := b.Delay(n); got != want {
				t.Fatalf("case %d: Delay(%d) = %v; want %v", i, n, got, want)
			}
		}
	}
}

func TestTable_copies_its_input(t *testing.T) {
	steps := []time.Duration{time.Second, 2 * time.Second}
	b := policy.Table(steps...)
	steps[0] = time.Hour
	if got := b.Delay(1); got != time.Second {
		t.Fatalf("Delay(1) = %v after mutating the input; want 1s", got)
	}
}

func TestFixed_waits_the_same_before_every_retry(t *testing.T) {
	p := policy.Policy{MaxAttempts: 5, Backoff: policy.Fixed(3 * time.Second)}
	want := []time.Duration{3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}
	if diff := cmp.Diff(want, p.Schedule(4)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

// Property: MaxDelay caps every schedule, and below the cap leaves it unchanged.
func TestPolicy_property_max_delay_caps_any_schedule(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	backoffs := []policy.Backoff{
		policy.Fixed(7 * time.Second),
		policy.Exponential(time.Second, 1.7, 0),
		policy.Table(policy.RocketMQ().Schedule(16)...),
	}
	for _, b := range backoffs {
		for i := 0; i < 200; i++ {
			capd := time.Duration(1 + r.Int64N(int64(3*time.Hour)))
			p := policy.Policy{MaxAttempts: 1, Backoff: b, MaxDelay: capd}
			for n := 1; n <= 40; n++ {
				got, raw := p.Delay(n), b.Delay(n)
				if want := min(raw, capd); got != want {
					t.Fatalf("%v cap %v: Delay(%d) = %v; want %v", b, capd, n, got, want)
				}
			}
		}
	}
}

// Property: jittered delays stay within their documented bounds and the cap.
func TestPolicy_property_jitter_within_bounds(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 5000; i++ {
		frac := 0.01 + r.Float64()*0.99
		capd := time.Duration(0)
		if r.IntN(2) == 0 {
			capd = time.Duration(1 + r.Int64N(int64(time.Hour)))
		}
		base := policy.Policy{MaxAttempts: 1, Backoff: policy.Exponential(100*time.Millisecond, 2, 0), MaxDelay: capd}
		n := 1 + r.IntN(30)
		u := r.Float64()
		d := base.Delay(n)

		full := base
		full.Jitter = policy.FullJitter()
		if got := full.JitteredDelay(n, u); got < 0 || got > d {
			t.Fatalf("full jitter: JitteredDelay(%d, %v) = %v outside [0, %v]", n, u, got, d)
		}

		uni := base
		uni.Jitter = policy.UniformJitter(frac)
		got := uni.JitteredDelay(n, u)
		lo := time.Duration(float64(d) * (1 - frac))
		hi := time.Duration(float64(d) * (1 + frac))
		if capd > 0 {
			hi = min(hi, capd)
		}
		// One nanosecond of slack for float rounding.
		if got < lo-1 || got > hi+1 {
			t.Fatalf("uniform ±%v: JitteredDelay(%d, %v) = %v outside [%v, %v]", frac, n, u, got, lo, hi)
		}
		if capd > 0 && got > capd {
			t.Fatalf("uniform jitter %v above cap %v", got, capd)
		}

		if got := base.JitteredDelay(n, u); got != d {
			t.Fatalf("no jitter: JitteredDelay = %v; want Delay = %v", got, d)
		}
	}
}

func TestPolicy_jitter_uses_the_supplied_draw(t *testing.T) {
	p := policy.Policy{MaxAttempts: 2, Backoff: policy.Fixed(10 * time.Second)}
	tests := []struct {
		name   string
		jitter policy.Jitter
		u      float64
		want   time.Duration
	}{
		{"full at 0", policy.FullJitter(), 0, 0},
		{"full at half", policy.FullJitter(), 0.5, 5 * time.Second},
		{"uniform low end", policy.UniformJitter(0.2), 0, 8 * time.Second},
		{"uniform middle", policy.UniformJitter(0.2), 0.5, 10 * time.Second},
		{"uniform 3/4", policy.UniformJitter(0.2), 0.75, 11 * time.Second},
		{"out-of-range draw is clamped", policy.FullJitter(), -3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := p
			q.Jitter = tt.jitter
			if got := q.JitteredDelay(1, tt.u); got != tt.want {
				t.Fatalf("JitteredDelay(1, %v) = %v; want %v", tt.u, got, tt.want)
			}
		})
	}
}

func TestPolicy_delay_is_zero_without_backoff_and_clamps_retry_number(t *testing.T) {
	if d := (policy.Policy{MaxAttempts: 3}).Delay(2); d != 0 {
		t.Fatalf("nil Backoff: Delay = %v; want 0", d)
	}
	p := policy.RocketMQ()
	if p.Delay(0) != p.Delay(1) || p.Delay(-5) != p.Delay(1) {
		t.Fatalf("Delay(0)/Delay(-5) = %v/%v; want Delay(1) = %v", p.Delay(0), p.Delay(-5), p.Delay(1))
	}
	if s := p.Schedule(0); s != nil {
		t.Fatalf("Schedule(0) = %v; want nil", s)
	}
}

func TestPolicy_exhausted_counts_all_attempts_including_the_first(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		attempts    int
		want        bool
	}{
		{"one attempt allowed, one made", 1, 1, true},
		{"three allowed, two made", 3, 2, false},
		{"three allowed, three made", 3, 3, true},
		{"rocketmq after 16 retries", 17, 17, true},
		{"rocketmq after 15 retries", 17, 16, false},
		{"unlimited", 0, 1_000_000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy.Policy{MaxAttempts: tt.maxAttempts}
			if got := p.Exhausted(tt.attempts); got != tt.want {
				t.Fatalf("Exhausted(%d) with MaxAttempts %d = %v; want %v", tt.attempts, tt.maxAttempts, got, tt.want)
			}
		})
	}
}

func TestPolicy_with_max_retries_stores_attempts(t *testing.T) {
	p := policy.Policy{}.WithMaxRetries(2)
	if p.MaxAttempts != 3 || p.Retries() != 2 {
		t.Fatalf("WithMaxRetries(2): MaxAttempts %d Retries %d; want 3 and 2", p.MaxAttempts, p.Retries())
	}
	if u := (policy.Policy{}).WithMaxRetries(-1); u.MaxAttempts != 0 || u.Retries() != -1 {
		t.Fatalf("WithMaxRetries(-1): MaxAttempts %d Retries %d; want 0 and -1", u.MaxAttempts, u.Retries())
	}
}

func TestPolicy_within_budget(t *testing.T) {
	p := policy.Policy{MaxAttempts: 0, MaxElapsed: time.Minute, Backoff: policy.Fixed(time.Second)}
	if !p.WithinBudget(30*time.Second, 30*time.Second) {
		t.Fatal("a retry starting exactly at the budget should be allowed")
	}
	if p.WithinBudget(30*time.Second, 31*time.Second) {
		t.Fatal("a retry starting after the budget should not be allowed")
	}
	if !(policy.Policy{MaxAttempts: 2}).WithinBudget(1000*time.Hour, time.Hour) {
		t.Fatal("no MaxElapsed means no budget")
	}
}

var errTransient = errors.New("transient")
var errAuth = errors.New("auth")

type codeErr struct{ code int }

func (e *codeErr) Error() string { return fmt.Sprintf("code %d", e.code) }

func TestPolicy_retryable(t *testing.T) {
	classifier := func(err error) policy.Class {
		var ce *codeErr
		switch {
		case errors.Is(err, errAuth):
			return policy.Stop
		case errors.As(err, &ce) && ce.code == 2:
			return policy.Retry
		}
		return policy.Default
	}
	tests := []struct {
		name       string
		err        error
		classifier func(error) policy.Class
		want       bool
	}{
		{"nil is not retried", nil, nil, false},
		{"plain error is retried", errTransient, nil, true},
		{"wrapped plain error is retried", fmt.Errorf("send: %w", errTransient), nil, true},
		{"permanent is not retried", policy.Permanent(errTransient), nil, false},
		{"wrapped permanent is not retried", fmt.Errorf("send: %w", policy.Permanent(errTransient)), nil, false},
		{"joined permanent is not retried", errors.Join(io.EOF, policy.Permanent(errTransient)), nil, false},
		{"context canceled is not retried", context.Canceled, nil, false},
		{"wrapped deadline is not retried", fmt.Errorf("send: %w", context.DeadlineExceeded), nil, false},
		{"classifier stop", fmt.Errorf("x: %w", errAuth), classifier, false},
		{"classifier retry", &codeErr{code: 2}, classifier, true},
		{"classifier default", &codeErr{code: 3}, classifier, true},
		{"classifier cannot revive permanent", policy.Permanent(&codeErr{code: 2}), classifier, false},
		{"classifier cannot revive cancellation", errors.Join(&codeErr{code: 2}, context.Canceled), classifier, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := policy.Policy{MaxAttempts: 3, Classifier: tt.classifier}
			if got := p.Retryable(tt.err); got != tt.want {
				t.Fatalf("Retryable(%v) = %v; want %v", tt.err, got, tt.want)
			}
			if tt.classifier == nil {
				if got := policy.IsRetryable(tt.err); got != tt.want {
					t.Fatalf("IsRetryable(%v) = %v; want %v", tt.err, got, tt.want)
				}
			}
		})
	}
}

func TestPermanent_keeps_the_cause_visible(t *testing.T) {
	cause := &codeErr{code: 7}
	err := fmt.Errorf("publish: %w", policy.Permanent(cause))
	if !policy.IsPermanent(err) {
		t.Fatal("IsPermanent = false")
	}
	var ce *codeErr
	if !errors.As(err, &ce) || ce != cause {
		t.Fatal("errors.As does not find the cause")
	}
	if !errors.Is(policy.Permanent(io.EOF), io.EOF) {
		t.Fatal("errors.Is does not see the cause")
	}
	if got := policy.Permanent(io.EOF).Error(); got != io.EOF.Error() {
		t.Fatalf("message = %q; want the cause's", got)
	}
	if policy.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
	if policy.IsPermanent(io.EOF) || policy.IsPermanent(nil) {
		t.Fatal("IsPermanent true for an unmarked error")
	}
	once := policy.Permanent(io.EOF)
	if policy.Permanent(once) != once {
		t.Fatal("Permanent of a permanent error should not wrap again")
	}
}

func TestPolicy_validate(t *testing.T) {
	good := []struct {
		name string
		p    policy.Policy
	}{
		{"rocketmq", policy.RocketMQ()},
		{"single attempt", policy.Policy{MaxAttempts: 1}},
		{"unlimited with budget", policy.Policy{MaxElapsed: time.Minute}},
		{"unlimited with delay", policy.Policy{Backoff: policy.Fixed(time.Second)}},
		{"exponential", policy.Policy{MaxAttempts: 3, Backoff: policy.Exponential(time.Second, 1.5, time.Minute)}},
		{"exponential multiplier 1", policy.Policy{MaxAttempts: 3, Backoff: policy.Exponential(time.Second, 1, 0)}},
		{"uniform jitter", policy.Policy{MaxAttempts: 3, Jitter: policy.UniformJitter(1)}},
		{"full jitter with cap", policy.Policy{MaxAttempts: 3, Jitter: policy.FullJitter(), MaxDelay: time.Second}},
		{"custom backoff", policy.Policy{MaxAttempts: 3, Backoff: policy.BackoffFunc(func(n int) time.Duration { return time.Duration(n) })}},
	}
	for _, tt := range good {
		t.Run("good/"+tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
	bad := []struct {
		name  string
		p     policy.Policy
		nerrs int
	}{
		{"zero value busy loop", policy.Policy{}, 1},
		{"negative attempts", policy.Policy{MaxAttempts: -1}, 1},
		{"negative budget", policy.Policy{MaxAttempts: 1, MaxElapsed: -1}, 1},
		{"negative cap", policy.Policy{MaxAttempts: 1, MaxDelay: -1}, 1},
		{"zero multiplier", policy.Policy{MaxAttempts: 2, Backoff: policy.Exponential(time.Second, 0, 0)}, 1},
		{"shrinking multiplier", policy.Policy{MaxAttempts: 2, Backoff: policy.Exponential(time.Second, 0.5, 0)}, 1},
		{"NaN multiplier", policy.Policy{MaxAttempts: 2, Backoff: policy.Exponential(time.Second, math.NaN(), 0)}, 1},
		{"max below initial", policy.Policy{MaxAttempts: 2, Backoff: policy.Exponential(time.Minute, 2, time.Second)}, 1},
		{"negative initial", policy.Policy{MaxAttempts: 2, Backoff: policy.Exponential(-time.Second, 2, 0)}, 1},
		{"negative fixed", policy.Policy{MaxAttempts: 2, Backoff: policy.Fixed(-time.Second)}, 1},
		{"empty table", policy.Policy{MaxAttempts: 2, Backoff: policy.Table()}, 1},
		{"negative table step", policy.Policy{MaxAttempts: 2, Backoff: policy.Table(time.Second, -time.Second)}, 1},
		{"uniform jitter zero fraction", policy.Policy{MaxAttempts: 2, Jitter: policy.UniformJitter(0)}, 1},
		{"uniform jitter fraction above 1", policy.Policy{MaxAttempts: 2, Jitter: policy.UniformJitter(1.5)}, 1},
		{"unknown jitter mode", policy.Policy{MaxAttempts: 2, Jitter: policy.Jitter{Mode: 9}}, 1},
		{"every problem at once", policy.Policy{MaxAttempts: -1, MaxElapsed: -1, MaxDelay: -1, Backoff: policy.Exponential(-1, 0, 0), Jitter: policy.UniformJitter(2)}, 6},
	}
	for _, tt := range bad {
		t.Run("bad/"+tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if err == nil {
				t.Fatal("Validate = nil; want an error")
			}
			if n := countJoined(err); n != tt.nerrs {
				t.Fatalf("Validate reported %d problems; want %d: %v", n, tt.nerrs, err)
			}
		})
	}
}

// countJoined counts the leaves of an errors.Join tree.
func countJoined(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		n := 0
		for _, e := range j.Unwrap() {
			n += countJoined(e)
		}
		return n
	}
	if w := errors.Unwrap(err); w != nil {
		if _, ok := w.(interface{ Unwrap() []error }); ok {
			return countJoined(w)
		}
	}
	return 1
}

func TestClass_and_jitter_mode_strings(t *testing.T) {
	got := []string{policy.Default.String(), policy.Retry.String(), policy.Stop.String(),
		policy.JitterNone.String(), policy.JitterFull.String(), policy.JitterUniform.String()}
	want := []string{"default", "retry", "stop", "none", "full", "uniform"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}
