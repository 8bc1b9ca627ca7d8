package metrics_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

type nopPublisher struct{}

func (nopPublisher) Publish(string, ...*message.Message) error { return nil }
func (nopPublisher) Close() error                              { return nil }

// BenchmarkPublish_success_path compares, in one run, a successful publish
// through retry.Publisher without metrics, with the metrics Publisher and
// Retry callback installed, and with RetryHooks in retry.Config.Hooks, over a publisher that does nothing (so the decorators
// are all that is measured).
func BenchmarkPublish_success_path(b *testing.B) {
	pol := policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(0)}
	m, err := metrics.New(metrics.Config{Registerer: prometheus.NewRegistry()}, nil)
	if err != nil {
		b.Fatal(err)
	}
	variants := []struct {
		name  string
		inner message.Publisher
		cfg   retry.Config
	}{
		{"bare", nil, retry.Config{}},
		{"retry_without_metrics", nopPublisher{}, retry.Config{Policy: pol}},
		{"retry_with_metrics", m.Publisher(nopPublisher{}), retry.Config{Policy: pol, OnRetry: m.Retry()}},
		{"retry_with_metrics_hooks", nopPublisher{}, retry.Config{Policy: pol, Hooks: []any{m.RetryHooks()}}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			var pub message.Publisher = nopPublisher{}
			if v.inner != nil {
				rp, err := retry.NewPublisher(v.inner, v.cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				pub = rp
			}
			msg := message.NewMessage("uuid", []byte("payload"))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := pub.Publish("orders", msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
