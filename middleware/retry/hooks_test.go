package retry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/policy"
)

// recorder implements every hook and logs each call as one line.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func uuids(msgs []*message.Message) string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.UUID
	}
	return strings.Join(ids, ",")
}

func (r *recorder) OnPublishAttempt(p retry.AttemptParams) {
	outcome := "ok"
	if p.Err != nil {
		outcome = "stop"
		if p.Retryable {
			outcome = "retryable"
		}
	}
	r.add("attempt %d %s [%s] %s", p.Attempt, p.Topic, uuids(p.Messages), outcome)
}

func (r *recorder) OnPublishRetry(p retry.Params) {
	r.add("retry %d after %v", p.Attempt, p.Delay)
}

func (r *recorder) OnGiveUp(p retry.GiveUpParams) {
	r.add("give up %s after %d [%s] exhausted=%v", p.Reason, p.Attempts, uuids(p.Messages), errors.Is(p.Err, retry.ErrExhausted))
}

// attemptsOnly implements AttemptHook alone.
type attemptsOnly struct{ n int }

func (a *attemptsOnly) OnPublishAttempt(retry.AttemptParams) { a.n++ }

var errStopByRule = errors.New("quota exceeded")

func TestPublisher_hooks_see_every_attempt_retry_and_give_up(t *testing.T) {
	fixed := policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Second)}
	classified := fixed
	classified.Classifier = func(err error) policy.Class {
		if errors.Is(err, errStopByRule) {
			return policy.Stop
		}
		return policy.Default
	}
	tests := []struct {
		name    string
		policy  policy.Policy
		script  func(int, []*message.Message) error
		wantErr error
		want    []string
	}{
		{
			name: "success at once runs only the attempt hook", policy: fixed,
			script: failTimes(0, nil),
			want:   []string{"attempt 1 t [m0] ok"},
		},
		{
			name: "two failures then success", policy: fixed,
			script: failTimes(2, errBroker),
			want: []string{
				"attempt 1 t [m0] retryable", "retry 1 after 1s",
				"attempt 2 t [m0] retryable", "retry 2 after 1s",
				"attempt 3 t [m0] ok",
			},
		},
		{
			name: "every attempt fails", policy: fixed,
			script: failTimes(100, errBroker), wantErr: retry.ErrExhausted,
			want: []string{
				"attempt 1 t [m0] retryable", "retry 1 after 1s",
				"attempt 2 t [m0] retryable", "retry 2 after 1s",
				"attempt 3 t [m0] retryable",
				"give up exhausted after 3 [m0] exhausted=true",
			},
		},
		{
			name: "permanent error", policy: fixed,
			script:  func(int, []*message.Message) error { return policy.Permanent(errBroker) },
			wantErr: errBroker,
			want:    []string{"attempt 1 t [m0] stop", "give up permanent after 1 [m0] exhausted=false"},
		},
		{
			// The classifier's verdict must reach observers: the error itself
			// carries no permanent marker.
			name: "error stopped by the classifier", policy: classified,
			script: func(call int, _ []*message.Message) error {
				if call == 0 {
					return errBroker
				}
				return errStopByRule
			},
			wantErr: errStopByRule,
			want: []string{
				"attempt 1 t [m0] retryable", "retry 1 after 1s",
				"attempt 2 t [m0] stop",
				"give up permanent after 2 [m0] exhausted=false",
			},
		},
		{
			name:   "time budget",
			policy: policy.Policy{MaxElapsed: 15 * time.Second, Backoff: policy.Fixed(10 * time.Second)},
			script: failTimes(100, errBroker), wantErr: retry.ErrExhausted,
			want: []string{
				"attempt 1 t [m0] retryable", "retry 1 after 10s",
				"attempt 2 t [m0] retryable",
				"give up budget after 2 [m0] exhausted=true",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clocktest.NewFake(time.Time{})
			rec := &recorder{}
			pub, err := retry.NewPublisher(scripted(tt.script),
				retry.Config{Policy: tt.policy, Clock: clk, Hooks: []any{rec}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = drive(t, clk, func() error { return pub.Publish("t", msgs(1)...) })
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Publish = %v; want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, rec.get()); diff != "" {
				t.Fatalf("hook calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPublisher_give_up_hook_reports_a_cancelled_wait_as_canceled(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	rec := &recorder{}
	pub, err := retry.NewPublisher(scripted(failTimes(100, errBroker)),
		retry.Config{Policy: policy.RocketMQ(), Clock: clk, Hooks: []any{rec}}, nil)
	if err != nil {
		t.Fatal(err)
	}
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
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish = %v; want context.Canceled", err)
	}
	want := []string{
		"attempt 1 t [m0] retryable", "retry 1 after 10s",
		"give up canceled after 1 [m0] exhausted=false",
	}
	if diff := cmp.Diff(want, rec.get()); diff != "" {
		t.Fatalf("hook calls (-want +got):\n%s", diff)
	}
}

// With no delay there is no wait for the cancellation to interrupt: a
// context that ends during an attempt still stops the loop before the next.
func TestPublisher_context_ended_during_an_attempt_stops_a_zero_delay_loop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inner := scripted(func(call int, _ []*message.Message) error {
		if call == 1 {
			cancel() // the caller gives up while the second attempt runs
		}
		return errBroker
	})
	rec := &recorder{}
	pub, err := retry.NewPublisher(inner, retry.Config{Policy: policy.Policy{MaxAttempts: 5}, Hooks: []any{rec}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs(1)
	m[0].SetContext(ctx)
	err = pub.Publish("t", m...)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errBroker) || errors.Is(err, retry.ErrExhausted) {
		t.Fatalf("Publish = %v; want context.Canceled joined with the last error, not exhaustion", err)
	}
	if n := inner.Calls(); n != 2 {
		t.Fatalf("inner called %d times; want 2", n)
	}
	// No retry is announced after the second attempt: it cannot start.
	want := []string{
		"attempt 1 t [m0] retryable", "retry 1 after 0s", "attempt 2 t [m0] retryable",
		"give up canceled after 2 [m0] exhausted=false",
	}
	if diff := cmp.Diff(want, rec.get()); diff != "" {
		t.Fatalf("hook calls (-want +got):\n%s", diff)
	}
}

func TestPublisher_attempt_hook_shows_only_the_messages_each_attempt_sends(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	rec := &recorder{}
	inner := scripted(func(call int, _ []*message.Message) error {
		if call == 0 {
			return &partialErr{accepted: []string{"m0", "m2"}}
		}
		return nil
	})
	pub, err := retry.NewPublisher(inner, retry.Config{
		Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Second)}, Clock: clk, Hooks: []any{rec},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drive(t, clk, func() error { return pub.Publish("t", msgs(3)...) }); err != nil {
		t.Fatal(err)
	}
	want := []string{"attempt 1 t [m0,m1,m2] retryable", "retry 1 after 1s", "attempt 2 t [m1] ok"}
	if diff := cmp.Diff(want, rec.get()); diff != "" {
		t.Fatalf("hook calls (-want +got):\n%s", diff)
	}
}

func TestPublisher_several_observers_all_see_the_events(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	first, second := &recorder{}, &recorder{}
	only := &attemptsOnly{}
	retries := &hookLog{}
	pub, err := retry.NewPublisher(scripted(failTimes(2, errBroker)), retry.Config{
		Policy: policy.Policy{MaxAttempts: 5, Backoff: policy.Fixed(time.Second)},
		Clock:  clk,
		Hooks:  []any{first, only, retries, second},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drive(t, clk, func() error { return pub.Publish("t", msgs(1)...) }); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first.get(), second.get()); diff != "" {
		t.Fatalf("observers disagree (-first +second):\n%s", diff)
	}
	if len(first.get()) != 5 || only.n != 3 || len(retries.get()) != 2 {
		t.Fatalf("events %d, attempts %d, retry hook calls %d; want 5, 3, 2", len(first.get()), only.n, len(retries.get()))
	}
}

func TestNewPublisher_rejects_hook_values_that_implement_no_hook(t *testing.T) {
	inner := scripted(failTimes(0, nil))
	tests := []struct {
		name  string
		hooks []any
		ok    bool
	}{
		{"no hooks", nil, true},
		{"one full observer", []any{&recorder{}}, true},
		{"attempt hook only", []any{&attemptsOnly{}}, true},
		{"a string", []any{&recorder{}, "metrics"}, false},
		{"nil value", []any{nil}, false},
		{"a value type whose methods need a pointer", []any{attemptsOnly{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := retry.Config{Policy: policy.RocketMQ(), Hooks: tt.hooks}
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v; want ok=%v", err, tt.ok)
			}
			_, err := retry.NewPublisher(inner, cfg, nil)
			if tt.ok && err != nil || !tt.ok && !errors.Is(err, retry.ErrInvalidConfig) {
				t.Fatalf("NewPublisher = %v; want ok=%v or ErrInvalidConfig", err, tt.ok)
			}
		})
	}
}

func TestGiveUpReason_String_names_each_reason(t *testing.T) {
	got := []string{retry.GiveUpPermanent.String(), retry.GiveUpExhausted.String(),
		retry.GiveUpBudget.String(), retry.GiveUpCanceled.String(), retry.GiveUpReason(0).String()}
	want := []string{"permanent", "exhausted", "budget", "canceled", "GiveUpReason(0)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestNewPublisher_refuses_a_typed_nil_hook(t *testing.T) {
	var h *countingRetryHook // would panic on the first retry
	_, err := retry.NewPublisher(&fakepub.Publisher{}, retry.Config{Policy: policy.RocketMQ(), Hooks: []any{h}}, nil)
	if !errors.Is(err, retry.ErrInvalidConfig) {
		t.Fatalf("NewPublisher(Hooks: typed nil) = %v; want ErrInvalidConfig", err)
	}
}

type countingRetryHook struct{ n int }

func (h *countingRetryHook) OnPublishRetry(retry.Params) { h.n++ }
