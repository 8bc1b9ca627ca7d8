package retry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

// The RocketMQ client leaves goroutines after Shutdown (see rocketmqtest);
// our own must all be gone.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(rocketmqtest.LeakOptions(),
		goleak.IgnoreAnyFunction("github.com/apache/rocketmq-client-go/v2/internal.(*rmqClient).RebalanceImmediately"))...)
}

var errBroker = errors.New("broker unavailable")

// scripted returns the inner publisher whose i-th call (0-based) answers
// script(i, msgs); its Sent lists what each attempt sent.
func scripted(script func(call int, msgs []*message.Message) error) *fakepub.Publisher {
	var mu sync.Mutex
	n := 0
	return &fakepub.Publisher{Func: func(_ string, msgs []*message.Message) error {
		mu.Lock()
		call := n
		n++
		mu.Unlock()
		return script(call, msgs)
	}}
}

func failTimes(k int, err error) func(int, []*message.Message) error {
	return func(call int, _ []*message.Message) error {
		if call < k {
			return fmt.Errorf("attempt %d: %w", call+1, err)
		}
		return nil
	}
}

// hookLog is a RetryHook that records its calls.
type hookLog struct {
	mu     sync.Mutex
	params []retry.Params
}

func (h *hookLog) OnPublishRetry(p retry.Params) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.params = append(h.params, p)
}

func (h *hookLog) get() []retry.Params {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]retry.Params(nil), h.params...)
}

func newPublisher(t *testing.T, inner message.Publisher, p policy.Policy, clk *clocktest.Fake, hooks *hookLog) *retry.Publisher {
	t.Helper()
	cfg := retry.Config{Policy: p}
	if clk != nil { // a nil *clocktest.Fake in the interface would be refused
		cfg.Clock = clk
	}
	if hooks != nil {
		cfg.Hooks = []any{hooks}
	}
	pub, err := retry.NewPublisher(inner, cfg, watermill.NopLogger{})
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	return pub
}

// drive runs publish on another goroutine and advances the fake clock to each
// timer the publisher waits on, returning the publish error and the waits.
func drive(t *testing.T, clk *clocktest.Fake, publish func() error) ([]time.Duration, error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- publish() }()
	var waits []time.Duration
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		blocked := make(chan error, 1)
		go func() { blocked <- clk.BlockUntil(ctx, 1) }()
		select {
		case err := <-done:
			cancel()
			<-blocked
			return waits, err
		case berr := <-blocked:
			cancel()
			if berr != nil {
				t.Fatalf("publisher neither returned nor waited: %v", berr)
			}
			d, _ := clk.AdvanceToNext()
			waits = append(waits, d)
		}
	}
}

func msgs(n int) []*message.Message {
	out := make([]*message.Message, n)
	for i := range out {
		out[i] = message.NewMessage(fmt.Sprintf("m%d", i), []byte("x"))
	}
	return out
}

func TestPublisher_k_failures_then_success_calls_k_plus_1_times_with_scheduled_delays(t *testing.T) {
	tests := []struct {
		name string
		p    policy.Policy
		k    int
	}{
		{"no failure", policy.RocketMQ(), 0},
		{"one failure", policy.Policy{MaxAttempts: 3, Backoff: policy.Exponential(time.Second, 2, 0)}, 1},
		{"exponential 1.5", policy.Policy{MaxAttempts: 6, Backoff: policy.Exponential(100*time.Millisecond, 1.5, time.Second)}, 5},
		{"rocketmq full schedule", policy.RocketMQ(), 16},
		{"rocketmq past the table", func() policy.Policy { p := policy.RocketMQ(); p.MaxAttempts = 20; return p }(), 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.NewFake(time.Time{})
			inner := scripted(failTimes(tt.k, errBroker))
			hooks := &hookLog{}
			pub := newPublisher(t, inner, tt.p, clk, hooks)
			start := clk.Now()
			m := msgs(1)

			waits, err := drive(t, clk, func() error { return pub.Publish("orders", m...) })
			if err != nil {
				t.Fatalf("Publish = %v; want nil", err)
			}
			if got := inner.Calls(); got != tt.k+1 {
				t.Fatalf("inner called %d times; want %d", got, tt.k+1)
			}
			if diff := cmp.Diff(tt.p.Schedule(tt.k), waits); diff != "" {
				t.Fatalf("waits (-want schedule +got):\n%s", diff)
			}
			if got, want := clk.Now().Sub(start), sumDur(tt.p.Schedule(tt.k)); got != want {
				t.Fatalf("fake time passed %v; want %v", got, want)
			}
			params := hooks.get()
			if len(params) != tt.k {
				t.Fatalf("RetryHook called %d times; want %d", len(params), tt.k)
			}
			var elapsed time.Duration
			for i, p := range params {
				if p.Attempt != i+1 || p.Delay != waits[i] || p.Topic != "orders" || !errors.Is(p.Err, errBroker) {
					t.Fatalf("RetryHook #%d = %+v; want attempt %d delay %v topic orders", i, p, i+1, waits[i])
				}
				if p.Elapsed != elapsed {
					t.Fatalf("RetryHook #%d Elapsed = %v; want %v", i, p.Elapsed, elapsed)
				}
				elapsed += p.Delay
				if len(p.Messages) != 1 || p.Messages[0] != m[0] {
					t.Fatalf("RetryHook #%d Messages = %v", i, p.Messages)
				}
			}
		})
	}
}

func sumDur(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s
}

func TestPublisher_returns_exhausted_error_with_attempt_count_and_last_cause(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	p := policy.Policy{MaxAttempts: 4, Backoff: policy.Fixed(time.Second)}
	inner := scripted(failTimes(1000, errBroker))
	hooks := &hookLog{}
	pub := newPublisher(t, inner, p, clk, hooks)

	waits, err := drive(t, clk, func() error { return pub.Publish("orders", msgs(1)...) })

	var ex *retry.ExhaustedError
	if !errors.As(err, &ex) || !errors.Is(err, retry.ErrExhausted) {
		t.Fatalf("Publish = %v; want *ExhaustedError", err)
	}
	if !errors.Is(err, errBroker) {
		t.Fatalf("errors.Is(err, cause) = false for %v", err)
	}
	if ex.Attempts != 4 || ex.Budget || ex.Topic != "orders" || ex.Elapsed != 3*time.Second {
		t.Fatalf("ExhaustedError = %+v; want 4 attempts in 3s, not budget", ex)
	}
	if ex.Err == nil || ex.Err.Error() != "attempt 4: broker unavailable" {
		t.Fatalf("Err = %v; want the last attempt's error", ex.Err)
	}
	if inner.Calls() != 4 || len(waits) != 3 || len(hooks.get()) != 3 {
		t.Fatalf("calls %d, waits %d, hooks %d; want 4, 3, 3", inner.Calls(), len(waits), len(hooks.get()))
	}
}

func TestPublisher_single_attempt_policy_does_not_retry(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	inner := scripted(failTimes(1, errBroker))
	pub := newPublisher(t, inner, policy.Policy{MaxAttempts: 1}, clk, nil)
	err := pub.Publish("t", msgs(1)...)
	var ex *retry.ExhaustedError
	if !errors.As(err, &ex) || ex.Attempts != 1 {
		t.Fatalf("Publish = %v; want ExhaustedError after 1 attempt", err)
	}
	if clk.Pending() != 0 || inner.Calls() != 1 {
		t.Fatalf("pending timers %d, calls %d; want 0 and 1", clk.Pending(), inner.Calls())
	}
}

func TestPublisher_does_not_retry_errors_the_policy_calls_final(t *testing.T) {
	errAuth := errors.New("no permission")
	tests := []struct {
		name      string
		script    func(int, []*message.Message) error
		classify  func(error) policy.Class
		wantCalls int
		check     func(error) bool
	}{
		{
			name:      "permanent error is tried once and returned as is",
			script:    func(int, []*message.Message) error { return policy.Permanent(errAuth) },
			wantCalls: 1,
			check:     func(err error) bool { return policy.IsPermanent(err) && errors.Is(err, errAuth) },
		},
		{
			name: "permanent after a transient failure stops at once",
			script: func(call int, _ []*message.Message) error {
				if call == 0 {
					return errBroker
				}
				return fmt.Errorf("send: %w", policy.Permanent(errAuth))
			},
			wantCalls: 2,
			check:     func(err error) bool { return policy.IsPermanent(err) && !errors.Is(err, retry.ErrExhausted) },
		},
		{
			name:   "classifier stop",
			script: func(int, []*message.Message) error { return errAuth },
			classify: func(err error) policy.Class {
				if errors.Is(err, errAuth) {
					return policy.Stop
				}
				return policy.Default
			},
			wantCalls: 1,
			check:     func(err error) bool { return errors.Is(err, errAuth) && !errors.Is(err, retry.ErrExhausted) },
		},
		{
			name:      "deadline exceeded from the backend",
			script:    func(int, []*message.Message) error { return fmt.Errorf("send: %w", context.DeadlineExceeded) },
			wantCalls: 1,
			check:     func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.NewFake(time.Time{})
			inner := scripted(tt.script)
			hooks := &hookLog{}
			p := policy.RocketMQ()
			p.Classifier = tt.classify
			pub := newPublisher(t, inner, p, clk, hooks)
			_, err := drive(t, clk, func() error { return pub.Publish("t", msgs(1)...) })
			if err == nil || !tt.check(err) {
				t.Fatalf("Publish = %v (%T)", err, err)
			}
			if got := inner.Calls(); got != tt.wantCalls {
				t.Fatalf("inner called %d times; want %d", got, tt.wantCalls)
			}
			if got := len(hooks.get()); got != tt.wantCalls-1 {
				t.Fatalf("RetryHook called %d times; want %d", got, tt.wantCalls-1)
			}
		})
	}
}

func TestPublisher_cancelled_message_context_stops_the_wait(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	inner := scripted(failTimes(1000, errBroker))
	pub := newPublisher(t, inner, policy.RocketMQ(), clk, nil)
	ctx, cancel := context.WithCancel(context.Background())
	m := msgs(1)
	m[0].SetContext(ctx)

	done := make(chan error, 1)
	go func() { done <- pub.Publish("t", m...) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := clk.BlockUntil(wctx, 1); err != nil {
		t.Fatalf("publisher never waited: %v", err)
	}
	cancel() // the clock never moves: only the cancellation can end the wait

	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish did not return after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errBroker) {
		t.Fatalf("Publish = %v; want context.Canceled joined with the last error", err)
	}
	if errors.Is(err, retry.ErrExhausted) {
		t.Fatalf("cancellation reported as exhaustion: %v", err)
	}
	if got := inner.Calls(); got != 1 {
		t.Fatalf("inner called %d times; want 1", got)
	}
}

func TestPublisher_any_cancelled_message_context_stops_a_batch(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	inner := scripted(failTimes(1000, errBroker))
	pub := newPublisher(t, inner, policy.RocketMQ(), clk, nil)
	ctx, cancel := context.WithCancelCause(context.Background())
	errShutdown := errors.New("request finished")
	m := msgs(3)
	m[1].SetContext(ctx)

	done := make(chan error, 1)
	go func() { done <- pub.Publish("t", m...) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := clk.BlockUntil(wctx, 1); err != nil {
		t.Fatalf("publisher never waited: %v", err)
	}
	cancel(errShutdown)
	select {
	case err := <-done:
		if !errors.Is(err, errShutdown) || !errors.Is(err, errBroker) {
			t.Fatalf("Publish = %v; want the cancel cause and the last error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish did not return")
	}
}

func TestPublisher_already_cancelled_context_is_not_retried(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	inner := scripted(failTimes(1000, errBroker))
	pub := newPublisher(t, inner, policy.RocketMQ(), clk, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := msgs(1)
	m[0].SetContext(ctx)
	err := pub.Publish("t", m...)
	if !errors.Is(err, context.Canceled) || inner.Calls() != 1 || clk.Pending() != 0 {
		t.Fatalf("Publish = %v, calls %d, timers %d; want Canceled after 1 call, no timer", err, inner.Calls(), clk.Pending())
	}
}

func TestPublisher_stops_before_a_retry_that_would_exceed_max_elapsed(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	inner := scripted(failTimes(1000, errBroker))
	p := policy.Policy{MaxAttempts: 0, MaxElapsed: 25 * time.Second, Backoff: policy.Fixed(10 * time.Second)}
	pub := newPublisher(t, inner, p, clk, nil)

	waits, err := drive(t, clk, func() error { return pub.Publish("t", msgs(1)...) })
	var ex *retry.ExhaustedError
	if !errors.As(err, &ex) || !ex.Budget || ex.Attempts != 3 {
		t.Fatalf("Publish = %#v; want budget exhaustion after 3 attempts", err)
	}
	if diff := cmp.Diff([]time.Duration{10 * time.Second, 10 * time.Second}, waits); diff != "" {
		t.Fatalf("waits (-want +got):\n%s", diff)
	}
}

func TestPublisher_unlimited_attempts_retry_until_success(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	inner := scripted(failTimes(40, errBroker))
	pub := newPublisher(t, inner, policy.Policy{Backoff: policy.Fixed(time.Minute)}, clk, nil)
	waits, err := drive(t, clk, func() error { return pub.Publish("t", msgs(1)...) })
	if err != nil || inner.Calls() != 41 || len(waits) != 40 {
		t.Fatalf("Publish = %v after %d calls and %d waits; want nil after 41 and 40", err, inner.Calls(), len(waits))
	}
}

// partialErr reports which messages the backend accepted before failing.
type partialErr struct{ accepted []string }

func (e *partialErr) Error() string {
	return fmt.Sprintf("batch failed after %d messages", len(e.accepted))
}
func (e *partialErr) Accepted() []string { return e.accepted }

func TestPublisher_resends_only_messages_the_backend_did_not_accept(t *testing.T) {
	m := msgs(5)
	inner := scripted(func(call int, ms []*message.Message) error {
		switch call {
		case 0: // stores m0, m1
			return fmt.Errorf("send: %w", &partialErr{accepted: []string{ms[0].UUID, ms[1].UUID}})
		case 1: // stores m2, fails the rest
			return &partialErr{accepted: []string{ms[0].UUID}}
		}
		return nil
	})
	clk := clocktest.NewFake(time.Time{})
	hooks := &hookLog{}
	pub := newPublisher(t, inner, policy.RocketMQ(), clk, hooks)
	_, err := drive(t, clk, func() error { return pub.Publish("t", m...) })
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	want := [][]string{{"m0", "m1", "m2", "m3", "m4"}, {"m2", "m3", "m4"}, {"m3", "m4"}}
	if diff := cmp.Diff(want, inner.Sent()); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
	if got := hooks.get(); len(got) != 2 || len(got[0].Messages) != 3 || len(got[1].Messages) != 2 {
		t.Fatalf("RetryHook messages = %v", got)
	}
}

func TestPublisher_exhausted_error_lists_messages_accepted_in_every_attempt(t *testing.T) {
	// Regression: the error returned when retries ran out carried only the last
	// attempt's Accepted, so a fallback stored messages an earlier attempt had
	// already delivered.
	m := msgs(4)
	inner := scripted(func(call int, ms []*message.Message) error {
		switch call {
		case 0: // stores m0
			return &partialErr{accepted: []string{ms[0].UUID}}
		case 1: // stores m1
			return &partialErr{accepted: []string{ms[0].UUID}}
		}
		return errBroker // m2 and m3 never make it
	})
	clk := clocktest.NewFake(time.Time{})
	p := policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Second)}
	pub := newPublisher(t, inner, p, clk, nil)
	_, err := drive(t, clk, func() error { return pub.Publish("t", m...) })
	var exhausted *retry.ExhaustedError
	if !errors.As(err, &exhausted) {
		t.Fatalf("Publish = %v, want *retry.ExhaustedError", err)
	}
	var partial retry.PartialError
	if !errors.As(err, &partial) {
		t.Fatalf("exhausted error is not a PartialError: %v", err)
	}
	if diff := cmp.Diff([]string{"m0", "m1"}, partial.Accepted()); diff != "" {
		t.Fatalf("Accepted (-want +got):\n%s", diff)
	}
	if !errors.Is(err, errBroker) {
		t.Fatalf("errors.Is(err, errBroker) = false for %v", err)
	}
}

func TestPublisher_resends_the_whole_batch_when_the_backend_does_not_say(t *testing.T) {
	inner := scripted(failTimes(1, errBroker))
	clk := clocktest.NewFake(time.Time{})
	pub := newPublisher(t, inner, policy.RocketMQ(), clk, nil)
	_, err := drive(t, clk, func() error { return pub.Publish("t", msgs(3)...) })
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	want := [][]string{{"m0", "m1", "m2"}, {"m0", "m1", "m2"}}
	if diff := cmp.Diff(want, inner.Sent()); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}
}

func TestPublisher_treats_a_failure_that_accepted_everything_as_success(t *testing.T) {
	inner := scripted(func(_ int, ms []*message.Message) error {
		return &partialErr{accepted: []string{ms[0].UUID, ms[1].UUID}}
	})
	pub := newPublisher(t, inner, policy.RocketMQ(), clocktest.NewFake(time.Time{}), nil)
	if err := pub.Publish("t", msgs(2)...); err != nil || inner.Calls() != 1 {
		t.Fatalf("Publish = %v after %d calls; want nil after 1", err, inner.Calls())
	}
}

func TestPublisher_hook_reports_the_jittered_delay_actually_waited(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	inner := scripted(failTimes(8, errBroker))
	hooks := &hookLog{}
	p := policy.Policy{MaxAttempts: 10, Backoff: policy.Exponential(time.Second, 2, 0), Jitter: policy.FullJitter()}
	pub := newPublisher(t, inner, p, clk, hooks)
	waits, err := drive(t, clk, func() error { return pub.Publish("t", msgs(1)...) })
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	params := hooks.get()
	if len(params) != len(waits) {
		t.Fatalf("%d hooks for %d waits", len(params), len(waits))
	}
	for i, pr := range params {
		if pr.Delay != waits[i] {
			t.Fatalf("hook %d reported %v but the loop waited %v", i, pr.Delay, waits[i])
		}
		if pr.Delay < 0 || pr.Delay > p.Delay(i+1) {
			t.Fatalf("jittered delay %v outside [0, %v]", pr.Delay, p.Delay(i+1))
		}
	}
}

func TestNewPublisher_rejects_bad_config(t *testing.T) {
	inner := scripted(failTimes(0, nil))
	tests := []struct {
		name  string
		inner message.Publisher
		cfg   retry.Config
	}{
		{"nil inner", nil, retry.Config{Policy: policy.RocketMQ()}},
		{"zero policy", inner, retry.Config{}},
		{"negative attempts", inner, retry.Config{Policy: policy.Policy{MaxAttempts: -1}}},
		{"bad backoff", inner, retry.Config{Policy: policy.Policy{MaxAttempts: 2, Backoff: policy.Exponential(time.Second, 0, 0)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := retry.NewPublisher(tt.inner, tt.cfg, nil)
			if !errors.Is(err, retry.ErrInvalidConfig) || pub != nil {
				t.Fatalf("NewPublisher = %v, %v; want ErrInvalidConfig", pub, err)
			}
		})
	}
}

func TestPublisher_close_closes_the_inner_publisher(t *testing.T) {
	inner := scripted(failTimes(0, nil))
	pub := newPublisher(t, inner, policy.RocketMQ(), nil, nil)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if !inner.Closed() {
		t.Fatal("inner publisher not closed")
	}
}

func TestPublisherDecorator_delivers_through_gochannel_after_failures(t *testing.T) {
	gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 16}, watermill.NopLogger{})
	defer gc.Close()
	sub, err := gc.Subscribe(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktest.NewFake(time.Time{})
	decorate := retry.PublisherDecorator(retry.Config{Policy: policy.RocketMQ(), Clock: clk}, nil)
	// Fails three times, then forwards to gochannel.
	pub, err := decorate(&fakepub.Publisher{Script: []error{errBroker, errBroker, errBroker}, Func: func(topic string, msgs []*message.Message) error {
		return gc.Publish(topic, msgs...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	m := message.NewMessage(watermill.NewUUID(), []byte("hello"))
	waits, err := drive(t, clk, func() error { return pub.Publish("orders", m) })
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	if diff := cmp.Diff(policy.RocketMQ().Schedule(3), waits); diff != "" {
		t.Fatalf("waits (-want +got):\n%s", diff)
	}
	select {
	case got := <-sub:
		got.Ack()
		if got.UUID != m.UUID || string(got.Payload) != "hello" {
			t.Fatalf("received %s %q", got.UUID, got.Payload)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message not delivered")
	}
}

// indexedErr reports the accepted messages by position as well as by UUID.
type indexedErr struct {
	partialErr
	idx []int
}

func (e *indexedErr) AcceptedIndexes() []int { return e.idx }

func TestPublisher_resends_a_message_whose_uuid_an_accepted_message_shares(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func(ms []*message.Message) error
	}{
		{"by UUID", func(ms []*message.Message) error { return &partialErr{accepted: []string{ms[0].UUID}} }},
		{"by position", func(ms []*message.Message) error {
			return &indexedErr{partialErr{accepted: []string{ms[1].UUID}}, []int{1}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := []*message.Message{
				message.NewMessage("same", []byte("first")), message.NewMessage("same", []byte("second")),
				message.NewMessage("other", []byte("third")),
			}
			var payloads [][]string
			inner := scripted(func(call int, ms []*message.Message) error {
				var ps []string
				for _, x := range ms {
					ps = append(ps, string(x.Payload))
				}
				payloads = append(payloads, ps)
				if call == 0 {
					return tc.err(ms)
				}
				return nil
			})
			clk := clocktest.NewFake(time.Time{})
			pub := newPublisher(t, inner, policy.RocketMQ(), clk, nil)
			if _, err := drive(t, clk, func() error { return pub.Publish("t", m...) }); err != nil {
				t.Fatalf("Publish = %v", err)
			}
			resent := []string{"second", "third"} // the earliest "same" was taken by UUID
			if tc.name == "by position" {
				resent = []string{"first", "third"}
			}
			want := [][]string{{"first", "second", "third"}, resent}
			if diff := cmp.Diff(want, payloads); diff != "" {
				t.Fatalf("payloads per call (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPublisher_exhausted_error_lists_accepted_positions(t *testing.T) {
	m := []*message.Message{message.NewMessage("same", []byte("a")), message.NewMessage("same", []byte("b"))}
	inner := scripted(func(call int, ms []*message.Message) error {
		if call == 0 {
			return &indexedErr{partialErr{accepted: []string{"same"}}, []int{1}}
		}
		return errBroker
	})
	clk := clocktest.NewFake(time.Time{})
	pub := newPublisher(t, inner, policy.Policy{MaxAttempts: 2, Backoff: policy.Fixed(time.Second)}, clk, nil)
	_, err := drive(t, clk, func() error { return pub.Publish("t", m...) })
	var pie retry.PartialIndexError
	if !errors.As(err, &pie) {
		t.Fatalf("Publish = %v; want a PartialIndexError", err)
	}
	if diff := cmp.Diff([]int{1}, pie.AcceptedIndexes()); diff != "" {
		t.Fatalf("AcceptedIndexes (-want +got):\n%s", diff)
	}
}

func TestPublisher_refuses_an_empty_uuid_without_sending_or_retrying(t *testing.T) {
	inner := scripted(func(int, []*message.Message) error { return nil })
	pub := newPublisher(t, inner, policy.RocketMQ(), nil, nil)
	err := pub.Publish("t", message.NewMessage("ok", nil), message.NewMessage("", nil))
	if !errors.Is(err, msgcheck.ErrEmptyUUID) || !policy.IsPermanent(err) {
		t.Fatalf("Publish = %v; want a permanent msgcheck.ErrEmptyUUID", err)
	}
	if n := inner.Calls(); n != 0 {
		t.Fatalf("inner called %d times; want 0", n)
	}
}

func TestNewPublisher_refuses_a_typed_nil_inner_publisher(t *testing.T) {
	var inner *fakepub.Publisher // what a failed constructor returns
	if _, err := retry.NewPublisher(inner, retry.Config{Policy: policy.RocketMQ()}, nil); !errors.Is(err, retry.ErrInvalidConfig) {
		t.Fatalf("NewPublisher(typed nil) = %v; want ErrInvalidConfig", err)
	}
	var clk *clocktest.Fake
	if _, err := retry.NewPublisher(&fakepub.Publisher{}, retry.Config{Policy: policy.RocketMQ(), Clock: clk}, nil); !errors.Is(err, retry.ErrInvalidConfig) {
		t.Fatalf("NewPublisher(Clock: typed nil) = %v; want ErrInvalidConfig", err)
	}
}

// A permanent failure of a later attempt reports positions in the messages
// that attempt sent; the error Publish returns counts them in the call.
func TestPublisher_final_error_after_a_partial_attempt_lists_positions_in_the_call(t *testing.T) {
	m := msgs(3)
	inner := scripted(func(call int, ms []*message.Message) error {
		if call == 0 { // m0 accepted, the rest not
			return &indexedErr{partialErr{accepted: []string{ms[0].UUID}}, []int{0}}
		}
		// m1 accepted (position 0 of this attempt), m2 refused for good
		return policy.Permanent(&indexedErr{partialErr{accepted: []string{ms[0].UUID}}, []int{0}})
	})
	clk := clocktest.NewFake(time.Time{})
	pub := newPublisher(t, inner, policy.RocketMQ(), clk, nil)
	_, err := drive(t, clk, func() error { return pub.Publish("t", m...) })
	if !policy.IsPermanent(err) {
		t.Fatalf("Publish = %v; want the permanent error", err)
	}
	var pie retry.PartialIndexError
	var pe retry.PartialError
	if !errors.As(err, &pie) || !errors.As(err, &pe) {
		t.Fatalf("Publish = %v; want a PartialIndexError", err)
	}
	if diff := cmp.Diff([]int{0, 1}, pie.AcceptedIndexes()); diff != "" {
		t.Errorf("AcceptedIndexes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"m0", "m1"}, pe.Accepted()); diff != "" {
		t.Errorf("Accepted (-want +got):\n%s", diff)
	}
	var inner2 *indexedErr
	if !errors.As(err, &inner2) || err.Error() != inner2.Error() {
		t.Errorf("the backend's error %v is not visible unchanged", err)
	}
}

// Config.Rand is the jitter's only random source: a fixed sequence gives
// known waits, on the clock and in the RetryHook alike (the draw used to come
// from the global math/rand, so no test could pin a jittered delay).
func TestPublisher_waits_the_jittered_delays_its_Rand_draws(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	draws := []float64{0.25, 0.75}
	var mu sync.Mutex
	hooks := &hookLog{}
	pub, err := retry.NewPublisher(scripted(failTimes(2, errBroker)), retry.Config{
		// Exponential 1s, 2s with ±50 %: u=0.25 gives 0.75x, u=0.75 gives 1.25x.
		Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Exponential(time.Second, 2, 0), Jitter: policy.UniformJitter(0.5)},
		Clock:  clk,
		Rand: func() float64 {
			mu.Lock()
			defer mu.Unlock()
			u := draws[0]
			draws = draws[1:]
			return u
		},
		Hooks: []any{hooks},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waits, err := drive(t, clk, func() error { return pub.Publish("t", msgs(1)...) })
	if err != nil {
		t.Fatalf("Publish = %v", err)
	}
	want := []time.Duration{750 * time.Millisecond, 2500 * time.Millisecond}
	if diff := cmp.Diff(want, waits); diff != "" {
		t.Fatalf("waits (-want +got):\n%s", diff)
	}
	var reported []time.Duration
	for _, p := range hooks.get() {
		reported = append(reported, p.Delay)
	}
	if diff := cmp.Diff(want, reported); diff != "" {
		t.Fatalf("RetryHook delays (-want +got):\n%s", diff)
	}
}

func TestPublisher_draws_no_random_number_without_jitter(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	drawn := 0
	pub, err := retry.NewPublisher(scripted(failTimes(1, errBroker)), retry.Config{
		Policy: policy.Policy{MaxAttempts: 2, Backoff: policy.Fixed(time.Second)},
		Clock:  clk,
		Rand:   func() float64 { drawn++; return 0.5 },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waits, err := drive(t, clk, func() error { return pub.Publish("t", msgs(1)...) })
	if err != nil || drawn != 0 || len(waits) != 1 || waits[0] != time.Second {
		t.Fatalf("Publish = %v, draws %d, waits %v; want nil, 0, [1s]", err, drawn, waits)
	}
}
