package retry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/policy"
)

// nopAttemptHook is the cheapest possible observer: it measures the cost of
// running an AttemptHook, not of what it does.
type nopAttemptHook struct{}

func (nopAttemptHook) OnPublishAttempt(retry.AttemptParams) {}

// BenchmarkPublisher_success_path compares a bare no-op publisher with the same
// publisher behind the retry decorator, without hooks and with one no-op
// AttemptHook; the differences are the decorator's and the hook's cost on a
// successful Publish.
func BenchmarkPublisher_success_path(b *testing.B) {
	msg := message.NewMessage("bench", []byte("payload"))
	pubs := []struct {
		name string
		pub  message.Publisher
	}{
		{"bare", fakepub.Nop},
	}
	rp, err := retry.NewPublisher(fakepub.Nop, retry.Config{Policy: policy.RocketMQ()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	pubs = append(pubs, struct {
		name string
		pub  message.Publisher
	}{"retry", rp})
	hooked, err := retry.NewPublisher(fakepub.Nop, retry.Config{Policy: policy.RocketMQ(), Hooks: []any{nopAttemptHook{}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	pubs = append(pubs, struct {
		name string
		pub  message.Publisher
	}{"retry_with_attempt_hook", hooked})

	for _, p := range pubs {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := p.pub.Publish("bench", msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewPublisher(b *testing.B) {
	b.ReportAllocs()
	cfg := retry.Config{Policy: policy.RocketMQ()}
	for i := 0; i < b.N; i++ {
		if _, err := retry.NewPublisher(fakepub.Nop, cfg, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// instantClock fires every wait at once and never moves, so a benchmark with
// a non-zero delay measures the retry loop, not the wait.
type instantClock struct{}

func (instantClock) Now() time.Time { return time.Time{} }

func (instantClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

// BenchmarkPublisher_retry_path measures the cost of the retry loop itself:
// a Publish whose first attempt fails and second succeeds, and one whose
// three attempts all fail (ExhaustedError). The inner publisher does nothing
// but answer; with no Backoff the delay is zero, with a Backoff the clock
// fires at once.
func BenchmarkPublisher_retry_path(b *testing.B) {
	errBench := errors.New("broker unavailable")
	msg := message.NewMessage("bench", []byte("payload"))
	for _, bc := range []struct {
		name  string
		pol   policy.Policy
		clock clock.Clock
		fail  func(call int) bool
		ok    bool
	}{
		{"one_failure_no_delay", policy.Policy{MaxAttempts: 3}, nil, func(call int) bool { return call%2 == 0 }, true},
		{"one_failure_1s_delay_instant_clock", policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(time.Second)}, instantClock{}, func(call int) bool { return call%2 == 0 }, true},
		{"exhausted_3_attempts_no_delay", policy.Policy{MaxAttempts: 3}, nil, func(int) bool { return true }, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			call := 0 // the benchmark publishes from one goroutine
			inner := &fakepub.Publisher{Func: func(string, []*message.Message) error {
				fail := bc.fail(call)
				call++
				if fail {
					return errBench
				}
				return nil
			}}
			pub, err := retry.NewPublisher(inner, retry.Config{Policy: bc.pol, Clock: bc.clock}, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				err := pub.Publish("bench", msg)
				if (err == nil) != bc.ok {
					b.Fatalf("Publish = %v", err)
				}
			}
		})
	}
}
