package metrics

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

var _ message.Publisher = (*Publisher)(nil)

// topicCounters caches the labelled children of one topic, so a publish costs
// atomic adds instead of a label lookup.
type topicCounters struct {
	ok, failed, permanent, canceled prometheus.Counter
	permanentFailures               prometheus.Counter
	retries                         prometheus.Counter
	okDuration, errDuration         prometheus.Observer
}

func (m *Metrics) countersFor(topic string) *topicCounters {
	if c, ok := m.topics.Load(topic); ok {
		return c.(*topicCounters)
	}
	m.initTopic(topic)
	c := &topicCounters{
		ok:                m.publishAttempts.WithLabelValues(topic, OutcomeOK),
		failed:            m.publishAttempts.WithLabelValues(topic, OutcomeError),
		permanent:         m.publishAttempts.WithLabelValues(topic, OutcomePermanent),
		canceled:          m.publishAttempts.WithLabelValues(topic, OutcomeCanceled),
		permanentFailures: m.publishPermanent.WithLabelValues(topic),
		retries:           m.publishRetries.WithLabelValues(topic),
		okDuration:        m.publishDuration.WithLabelValues(topic, OutcomeOK),
		errDuration:       m.publishDuration.WithLabelValues(topic, OutcomeError),
	}
	actual, _ := m.topics.LoadOrStore(topic, c)
	return actual.(*topicCounters)
}

// Publisher counts every call to the publisher it wraps as one attempt per
// message. RetryHooks count the same attempts from inside retry.Publisher,
// with the policy's Classifier taken into account, and are the better choice
// behind a retry.Publisher; use Publisher where there is no retry.Publisher,
// never both around the same sends (each attempt would count twice). Put it
// innermost, around the broker publisher, so that each retry of
// retry.Publisher is one more attempt:
//
//	async( fallback( retry( metrics.Publisher( broker ) ) ) )
//
// It adds no behaviour: errors and messages pass through unchanged, and Close
// closes the inner publisher. It is safe for concurrent use when the inner
// publisher is.
type Publisher struct {
	inner message.Publisher
	m     *Metrics
}

// Publisher wraps inner so that its sends are counted in
// reliamq_publish_attempts_total and reliamq_publish_permanent_failures_total
// and timed in reliamq_publish_duration_seconds (on Config.Clock).
// A permanent error (policy.IsPermanent) counts as outcome "permanent", a
// context cancellation or deadline as "canceled" (not a failure), any other
// error as "error".
func (m *Metrics) Publisher(inner message.Publisher) *Publisher {
	return &Publisher{inner: inner, m: m}
}

// PublisherDecorator returns m.Publisher as a message.PublisherDecorator.
func (m *Metrics) PublisherDecorator() message.PublisherDecorator {
	return func(pub message.Publisher) (message.Publisher, error) {
		if pub == nil {
			return nil, ErrInvalidArgument
		}
		return m.Publisher(pub), nil
	}
}

// Publish publishes through the inner publisher and counts the outcome.
// It returns ErrInvalidArgument, counting nothing, when the Publisher was made
// around a nil publisher.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.inner == nil {
		return fmt.Errorf("%w: metrics.Publisher around a nil publisher", ErrInvalidArgument)
	}
	clk := p.m.cfg.Clock
	start := clk.Now()
	err := p.inner.Publish(topic, msgs...)
	took := clk.Now().Sub(start).Seconds()
	c := p.m.countersFor(topic)
	n := float64(len(msgs))
	if err == nil {
		c.okDuration.Observe(took)
	} else {
		c.errDuration.Observe(took)
	}
	switch {
	case err == nil:
		c.ok.Add(n)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		c.canceled.Add(n)
	case policy.IsPermanent(err):
		c.permanent.Add(n)
		c.permanentFailures.Add(n)
	default:
		c.failed.Add(n)
	}
	return err
}

// Close closes the inner publisher.
func (p *Publisher) Close() error {
	if p.inner == nil {
		return nil
	}
	return p.inner.Close()
}

// Retry returns the function for retry.Config.OnRetry: it counts the messages
// of each failed attempt that will be retried in
// reliamq_publish_retries_total. The wait that follows is not a failure and
// is not counted. RetryHooks count the same retries; use one or the other. To
// keep an OnRetry of your own, call both:
//
//	onRetry := m.Retry()
//	cfg.OnRetry = func(p retry.Params) { onRetry(p); mine(p) }
func (m *Metrics) Retry() func(retry.Params) {
	return func(p retry.Params) {
		m.countersFor(p.Topic).retries.Add(float64(len(p.Messages)))
	}
}
