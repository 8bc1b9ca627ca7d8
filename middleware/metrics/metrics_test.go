package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

func TestNew_rejects_a_config_without_registerer_and_registers_nothing_globally(t *testing.T) {
	before, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(metrics.Config{}, nil); !errors.Is(err, metrics.ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	if _, err := metrics.New(metrics.Config{Registerer: prometheus.NewRegistry(), ScrapeTimeout: -time.Second}, nil); !errors.Is(err, metrics.ErrInvalidConfig) {
		t.Fatalf("negative ScrapeTimeout: err = %v, want ErrInvalidConfig", err)
	}
	_, _ = newMetrics(t, metrics.Config{})
	after, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("default registry went from %d to %d metric families", len(before), len(after))
	}
	for _, mf := range after {
		if strings.HasPrefix(mf.GetName(), metrics.Namespace+"_") {
			t.Fatalf("%s registered on the default registry", mf.GetName())
		}
	}
}

func TestNew_fails_cleanly_when_the_registry_already_has_reliamq_metrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(metrics.Config{Registerer: reg}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(metrics.Config{Registerer: reg}, nil); err == nil {
		t.Fatal("second New on the same registry succeeded")
	}
	// The first Metrics still gathers without duplicates.
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// One send of three messages and one canceled send, through a retry
// publisher that does not retry (one attempt): every message counts, and a
// cancellation is not a failure. Counting sends that must not be retried
// takes no other wrapper than this.
func TestRetryHooks_count_every_message_of_a_batch_and_cancellation_is_not_a_failure(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	broker := &fakepub.Publisher{Script: []error{nil, context.Canceled}}
	pub, err := retry.NewPublisher(broker, retry.Config{Policy: policy.Policy{MaxAttempts: 1}, Hooks: []any{m.RetryHooks()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("t", message.NewMessage("a", nil), message.NewMessage("b", nil), message.NewMessage("c", nil)); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("t", message.NewMessage("d", nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the inner error unchanged", err)
	}
	wantValue(t, reg, 3, "reliamq_publish_attempts_total", "topic", "t", "outcome", "ok")
	wantValue(t, reg, 1, "reliamq_publish_attempts_total", "topic", "t", "outcome", "canceled")
	wantValue(t, reg, 0, "reliamq_publish_attempts_total", "topic", "t", "outcome", "error")
	wantValue(t, reg, 0, "reliamq_publish_retries_total", "topic", "t")
	wantValue(t, reg, 1, "reliamq_publish_give_ups_total", "topic", "t", "outcome", "canceled")
	if n := testutil.CollectAndCount(reg, "reliamq_publish_attempts_total"); n != 4 {
		t.Fatalf("%d series for one topic, want 4 (one per outcome)", n)
	}
	if broker.Calls() != 2 {
		t.Fatalf("broker saw %d calls, want 2", broker.Calls())
	}
}

var errQuota = errors.New("quota exceeded")

func TestRetryHooks_count_attempts_retries_give_ups_and_classifier_stops_as_permanent(t *testing.T) {
	m, reg := newMetrics(t, metrics.Config{})
	broker := &fakepub.Publisher{Script: []error{
		// orders: two failures, then success (3 attempts, 2 retries)
		errBrokerDown, errBrokerDown, nil,
		// invoices: permanent at once (1 attempt, no retry)
		policy.Permanent(errors.New("no permission")),
		// quotas: an error the policy's Classifier stops, with no permanent
		// marker of its own; it must count as permanent, not as error
		errQuota,
		// events: every attempt fails (3 attempts, 2 retries, exhausted)
		errBrokerDown, errBrokerDown, errBrokerDown,
		// late: the message context is already canceled
		context.Canceled,
	}}
	pol := policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(0), Classifier: func(err error) policy.Class {
		if errors.Is(err, errQuota) {
			return policy.Stop
		}
		return policy.Default
	}}
	pub, err := retry.NewPublisher(broker, retry.Config{Policy: pol, Hooks: []any{m.RetryHooks()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("orders", message.NewMessage("o1", nil)); err != nil {
		t.Fatalf("orders: %v", err)
	}
	if err := pub.Publish("invoices", message.NewMessage("i1", nil)); !policy.IsPermanent(err) {
		t.Fatalf("invoices: err = %v, want permanent", err)
	}
	if err := pub.Publish("quotas", message.NewMessage("q1", nil), message.NewMessage("q2", nil)); !errors.Is(err, errQuota) {
		t.Fatalf("quotas: err = %v, want the classified error", err)
	}
	if err := pub.Publish("events", message.NewMessage("e1", nil)); !errors.Is(err, retry.ErrExhausted) {
		t.Fatalf("events: err = %v, want ErrExhausted", err)
	}
	if err := pub.Publish("late", message.NewMessage("l1", nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("late: err = %v, want context.Canceled", err)
	}
	const attempts = "reliamq_publish_attempts_total"
	wantValue(t, reg, 1, attempts, "topic", "orders", "outcome", "ok")
	wantValue(t, reg, 2, attempts, "topic", "orders", "outcome", "error")
	wantValue(t, reg, 1, attempts, "topic", "invoices", "outcome", "permanent")
	wantValue(t, reg, 2, attempts, "topic", "quotas", "outcome", "permanent")
	wantValue(t, reg, 0, attempts, "topic", "quotas", "outcome", "error")
	wantValue(t, reg, 3, attempts, "topic", "events", "outcome", "error")
	wantValue(t, reg, 1, attempts, "topic", "late", "outcome", "canceled")
	wantValue(t, reg, 0, attempts, "topic", "late", "outcome", "permanent")
	wantValue(t, reg, 2, "reliamq_publish_retries_total", "topic", "orders")
	wantValue(t, reg, 2, "reliamq_publish_retries_total", "topic", "events")
	wantValue(t, reg, 0, "reliamq_publish_retries_total", "topic", "quotas")
	wantValue(t, reg, 1, "reliamq_publish_permanent_failures_total", "topic", "invoices")
	wantValue(t, reg, 2, "reliamq_publish_permanent_failures_total", "topic", "quotas")
	wantValue(t, reg, 0, "reliamq_publish_permanent_failures_total", "topic", "late")
	const giveUps = "reliamq_publish_give_ups_total"
	wantValue(t, reg, 0, giveUps, "topic", "orders", "outcome", "exhausted")
	wantValue(t, reg, 1, giveUps, "topic", "invoices", "outcome", "permanent")
	wantValue(t, reg, 2, giveUps, "topic", "quotas", "outcome", "permanent")
	wantValue(t, reg, 1, giveUps, "topic", "events", "outcome", "exhausted")
	wantValue(t, reg, 1, giveUps, "topic", "late", "outcome", "canceled")
	if broker.Calls() != 9 {
		t.Fatalf("broker saw %d calls, want 9", broker.Calls())
	}
	lint(t, reg)
}
