package metrics_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

// BenchmarkPublish_success_path compares, in one run, a successful publish
// on a publisher that does nothing, through retry.Publisher without metrics,
// and with RetryHooks in retry.Config.Hooks (so the decorator and the hooks
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
		{"retry_without_metrics", fakepub.Nop, retry.Config{Policy: pol}},
		{"retry_with_metrics_hooks", fakepub.Nop, retry.Config{Policy: pol, Hooks: []any{m.RetryHooks()}}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			pub := fakepub.Nop
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
