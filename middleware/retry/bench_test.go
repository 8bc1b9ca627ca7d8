package retry_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/retry"
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
