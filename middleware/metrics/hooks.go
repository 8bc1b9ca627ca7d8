package metrics

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/retry"
)

// Compile-time checks that the hook values implement the components' hook
// interfaces: a renamed hook method breaks the build here, not silently.
var (
	_ retry.AttemptHook = RetryHooks{}
	_ retry.RetryHook   = RetryHooks{}
	_ retry.GiveUpHook  = RetryHooks{}

	_ fallback.StoredHook      = FallbackHooks{}
	_ fallback.StoreFailedHook = FallbackHooks{}

	_ fallback.SentHook     = RelayHooks{}
	_ fallback.FailedHook   = RelayHooks{}
	_ fallback.PoisonedHook = RelayHooks{}
	_ fallback.OutageHook   = RelayHooks{}

	_ redelivery.HandledHook             = RedeliveryHooks{}
	_ redelivery.RedeliveryScheduledHook = RedeliveryHooks{}
	_ redelivery.RedeliveredHook         = RedeliveryHooks{}
	_ redelivery.DeadLetteredHook        = RedeliveryHooks{}
	_ redelivery.DroppedHook             = RedeliveryHooks{}
)

// FallbackHooks feeds reliamq_fallback_writes_total. Put it in
// fallback.Config.Hooks. Its methods only add to counters: they are safe for
// concurrent use and do not block.
type FallbackHooks struct{ m *Metrics }

// Fallback returns the hook value for fallback.Config.Hooks.
func (m *Metrics) Fallback() FallbackHooks { return FallbackHooks{m: m} }

// OnFallbackStored counts a message stored after a failed send.
func (h FallbackHooks) OnFallbackStored(p fallback.StoredParams) {
	h.m.initTopic(p.Topic)
	h.m.fallbackWrites.WithLabelValues(p.Topic, OutcomeStored).Inc()
}

// OnFallbackStoreFailed counts a message that was neither sent nor stored.
func (h FallbackHooks) OnFallbackStoreFailed(p fallback.StoreFailedParams) {
	h.m.initTopic(p.Topic)
	h.m.fallbackWrites.WithLabelValues(p.Topic, OutcomeNotStored).Inc()
}

// RelayHooks feeds reliamq_relay_sends_total, reliamq_relay_poisoned_total,
// reliamq_relay_outages_total and reliamq_relay_down. Put it in
// fallback.RelayConfig.Hooks (one value may serve several relays).
type RelayHooks struct{ m *Metrics }

// Relay returns the hook value for fallback.RelayConfig.Hooks.
func (m *Metrics) Relay() RelayHooks { return RelayHooks{m: m} }

// OnRelaySent counts a delivered row and observes how long it was stored
// (SentParams.Age) in reliamq_fallback_stored_seconds.
func (h RelayHooks) OnRelaySent(p fallback.SentParams) {
	h.m.initTopic(p.Topic)
	h.m.relaySends.WithLabelValues(p.Topic, OutcomeOK).Inc()
	h.m.fallbackStored.WithLabelValues(p.Topic).Observe(p.Age.Seconds())
}

// OnRelayFailed counts a failed send whose row was rescheduled.
func (h RelayHooks) OnRelayFailed(p fallback.FailedParams) {
	h.m.initTopic(p.Topic)
	h.m.relaySends.WithLabelValues(p.Topic, OutcomeError).Inc()
}

// OnRelayPoisoned counts a row moved to the poison destination.
func (h RelayHooks) OnRelayPoisoned(p fallback.PoisonedParams) {
	h.m.initTopic(p.Topic)
	h.m.relayPoisoned.WithLabelValues(p.Topic).Inc()
}

// OnRelayOutage tracks the relay's outage state. The probes a relay sends
// while down are counted as sends; its waits between probes are not failures.
func (h RelayHooks) OnRelayOutage(p fallback.OutageParams) {
	if p.Down {
		h.m.relayOutages.Inc()
		h.m.relayDown.Inc()
		return
	}
	h.m.relayDown.Dec()
}

// RedeliveryHooks feeds the reliamq_redelivery_* counters,
// reliamq_dead_lettered_total, reliamq_handler_duration_seconds and
// reliamq_redelivery_delay_seconds. Put it in redelivery.Config.Hooks.
type RedeliveryHooks struct{ m *Metrics }

// Redelivery returns the hook value for redelivery.Config.Hooks.
func (m *Metrics) Redelivery() RedeliveryHooks { return RedeliveryHooks{m: m} }

// OnHandled observes the duration of a handler run, by outcome.
func (h RedeliveryHooks) OnHandled(p redelivery.HandledParams) {
	h.m.initHandler(p.ConsumerGroup, p.Handler, p.Route == redelivery.BySubscriber)
	if p.Topic != "" {
		h.m.initDeadLetter(p.Topic, p.ConsumerGroup, p.Handler)
	}
	outcome := OutcomeOK
	if p.Err != nil {
		outcome = OutcomeError
	}
	h.m.handlerDuration.WithLabelValues(p.ConsumerGroup, p.Handler, outcome).Observe(p.Duration.Seconds())
}

// OnRedeliveryScheduled counts a failed message scheduled for retry p.Retry.
func (h RedeliveryHooks) OnRedeliveryScheduled(p redelivery.ScheduledParams) {
	h.m.redeliveryScheduled.WithLabelValues(p.ConsumerGroup, p.Handler, attemptLabel(p.Retry)).Inc()
}

// OnRedelivered counts a due message published to the retry topic, or a
// failed publish (tried again later, so it is not a lost message).
func (h RedeliveryHooks) OnRedelivered(p redelivery.RedeliveredParams) {
	if p.Err != nil {
		h.m.redeliveryPubFailed.WithLabelValues(p.ConsumerGroup, p.Handler).Inc()
		return
	}
	h.m.redeliveryFired.WithLabelValues(p.ConsumerGroup, p.Handler, attemptLabel(p.Retry)).Inc()
	if !p.FailedAt.IsZero() {
		h.m.redeliveryDelay.WithLabelValues(p.ConsumerGroup, p.Handler).Observe(p.PublishedAt.Sub(p.FailedAt).Seconds())
	}
}

// OnDeadLettered counts a message published to the dead-letter topic.
func (h RedeliveryHooks) OnDeadLettered(p redelivery.DeadLetterParams) {
	h.m.deadLettered.WithLabelValues(p.Topic, p.ConsumerGroup, p.Handler).Inc()
}

// OnDropped counts a failed message acknowledged without retry.
func (h RedeliveryHooks) OnDropped(p redelivery.DroppedParams) {
	h.m.redeliveryDropped.WithLabelValues(p.ConsumerGroup, p.Handler).Inc()
}

// ReplayHooks counts each dead-lettered message replayed (ok) or not
// (error) in reliamq_dlq_replays_total, by original topic. Put it in
// redelivery.ReplayConfig.Hooks.
type ReplayHooks struct{ m *Metrics }

var _ redelivery.ReplayedHook = ReplayHooks{}

// Replay returns the hook value for redelivery.ReplayConfig.Hooks.
func (m *Metrics) Replay() ReplayHooks { return ReplayHooks{m: m} }

// OnReplayed counts one message Replay read.
func (h ReplayHooks) OnReplayed(r redelivery.ReplayResult) {
	outcome := OutcomeOK
	if r.Err != nil {
		outcome = OutcomeError
	}
	h.m.initTopic(r.OriginalTopic)
	h.m.dlqReplays.WithLabelValues(r.OriginalTopic, outcome).Inc()
}

// RetryHooks feeds reliamq_publish_attempts_total,
// reliamq_publish_retries_total, reliamq_publish_permanent_failures_total,
// reliamq_publish_give_ups_total and reliamq_publish_duration_seconds from
// inside a retry.Publisher. Put it in retry.Config.Hooks (one value may serve
// several publishers). It is the one way to count sends: to count the sends
// of a publisher that should not retry, wrap it in a retry.Publisher with a
// one-attempt policy (policy.Policy{MaxAttempts: 1}) and these hooks.
type RetryHooks struct{ m *Metrics }

// RetryHooks returns the hook value for retry.Config.Hooks.
func (m *Metrics) RetryHooks() RetryHooks { return RetryHooks{m: m} }

// OnPublishAttempt counts the messages of one call to the broker publisher.
// A failed attempt is "canceled" for a context error (not a failure),
// "permanent" when the retry policy does not retry its error
// (AttemptParams.Retryable false: policy.Permanent or a Classifier Stop),
// and "error" otherwise; a permanent one also counts in
// reliamq_publish_permanent_failures_total.
func (h RetryHooks) OnPublishAttempt(p retry.AttemptParams) {
	c := h.m.countersFor(p.Topic)
	n := float64(len(p.Messages))
	if p.Err == nil {
		c.okDuration.Observe(p.Duration.Seconds())
	} else {
		c.errDuration.Observe(p.Duration.Seconds())
	}
	switch {
	case p.Err == nil:
		c.ok.Add(n)
	case errors.Is(p.Err, context.Canceled) || errors.Is(p.Err, context.DeadlineExceeded):
		c.canceled.Add(n)
	case !p.Retryable:
		c.permanent.Add(n)
		c.permanentFailures.Add(n)
	default:
		c.failed.Add(n)
	}
}

// OnPublishRetry counts the messages of a failed attempt that will be retried.
func (h RetryHooks) OnPublishRetry(p retry.Params) {
	h.m.countersFor(p.Topic).retries.Add(float64(len(p.Messages)))
}

// OnGiveUp counts the messages of a Publish that returns an error, by
// p.Reason (permanent, exhausted, budget, canceled).
func (h RetryHooks) OnGiveUp(p retry.GiveUpParams) {
	h.m.initTopic(p.Topic)
	h.m.publishGiveUps.WithLabelValues(p.Topic, p.Reason.String()).Add(float64(len(p.Messages)))
}

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
