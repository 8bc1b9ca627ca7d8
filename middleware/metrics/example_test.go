package metrics_test

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

// A send that fails twice and then succeeds is three attempts and two
// retries; the waits between them are not failures.
func ExampleMetrics_RetryHooks_retries() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg}, nil)
	if err != nil {
		panic(err)
	}
	broker := &fakepub.Publisher{Script: []error{errors.New("broker down"), errors.New("broker down")}}
	pub, err := retry.NewPublisher(broker, retry.Config{
		Policy: policy.Policy{MaxAttempts: 5, Backoff: policy.Fixed(0)},
		Hooks:  []any{m.RetryHooks()},
	}, nil)
	if err != nil {
		panic(err)
	}
	if err := pub.Publish("orders", message.NewMessage("m1", []byte("{}"))); err != nil {
		panic(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if v := mt.GetCounter().GetValue(); v > 0 {
				fmt.Print(mf.GetName())
				for _, l := range mt.GetLabel() {
					fmt.Printf(" %s=%s", l.GetName(), l.GetValue())
				}
				fmt.Println(":", v)
			}
		}
	}
	// Output:
	// reliamq_publish_attempts_total outcome=error topic=orders: 2
	// reliamq_publish_attempts_total outcome=ok topic=orders: 1
	// reliamq_publish_retries_total topic=orders: 2
}

// RetryHooks count from inside retry.Publisher: a failure the policy's
// Classifier stops is a permanent failure even without policy.Permanent.
func ExampleMetrics_RetryHooks() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg}, nil)
	if err != nil {
		panic(err)
	}
	errQuota := errors.New("quota exceeded")
	broker := &fakepub.Publisher{Script: []error{errors.New("broker down"), errQuota}}
	pub, err := retry.NewPublisher(broker, retry.Config{
		Policy: policy.Policy{MaxAttempts: 5, Backoff: policy.Fixed(0), Classifier: func(err error) policy.Class {
			if errors.Is(err, errQuota) {
				return policy.Stop
			}
			return policy.Default
		}},
		Hooks: []any{m.RetryHooks()},
	}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(pub.Publish("orders", message.NewMessage("m1", []byte("{}"))))
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if v := mt.GetCounter().GetValue(); v > 0 {
				fmt.Print(mf.GetName())
				for _, l := range mt.GetLabel() {
					fmt.Printf(" %s=%s", l.GetName(), l.GetValue())
				}
				fmt.Println(":", v)
			}
		}
	}
	// Output:
	// quota exceeded
	// reliamq_publish_attempts_total outcome=error topic=orders: 1
	// reliamq_publish_attempts_total outcome=permanent topic=orders: 1
	// reliamq_publish_give_ups_total outcome=permanent topic=orders: 1
	// reliamq_publish_permanent_failures_total topic=orders: 1
	// reliamq_publish_retries_total topic=orders: 1
}
