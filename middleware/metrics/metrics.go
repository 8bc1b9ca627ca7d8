package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliamq/reliamq/pkg/clock"
)

// Namespace prefixes every metric name.
const Namespace = "reliamq"

// DefaultScrapeTimeout bounds the store queries made at scrape time when
// Config.ScrapeTimeout is zero.
const DefaultScrapeTimeout = 5 * time.Second

// MaxAttemptLabel is the highest attempt number that gets its own value of the
// attempt label; later attempts share the value "17+" (RocketMQ's schedule has
// 16 distinct retries, every later one waits 2h), so an unlimited policy cannot
// create unbounded series.
const MaxAttemptLabel = 16

// Outcome label values.
const (
	OutcomeOK        = "ok"
	OutcomeError     = "error"
	OutcomePermanent = "permanent"
	OutcomeCanceled  = "canceled"
	OutcomeStored    = "stored"
	OutcomeNotStored = "not_stored"
	// OutcomeAccepted is async_sends_total's outcome for a call the inner
	// publisher returned nil for: sent, or, behind fallback.Publisher,
	// possibly stored in the fallback table (fallback_writes_total{outcome=
	// "stored"} counts those).
	OutcomeAccepted = "accepted"
)

// giveUpOutcomes are publish_give_ups_total's outcomes (retry.GiveUpReason).
var giveUpOutcomes = []string{"permanent", "exhausted", "budget", "canceled"}

// Histogram buckets, in seconds.
var (
	// SendBuckets are for publish and handler durations.
	SendBuckets = prometheus.DefBuckets
	// WaitBuckets are for the time a message waits in the fallback table or
	// for a redelivery: seconds to a day (RocketMQ's schedule reaches 2h).
	WaitBuckets = []float64{1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400}
)

var (
	// ErrInvalidConfig matches every error New returns for a bad Config.
	ErrInvalidConfig = errors.New("metrics: invalid config")
	// ErrInvalidArgument is returned by the Watch methods for a nil component.
	ErrInvalidArgument = errors.New("metrics: invalid argument")
)

// Config configures Metrics.
type Config struct {
	// Registerer receives every collector. Required: nothing is ever
	// registered globally, pass prometheus.DefaultRegisterer to opt into the
	// default registry. Registering fails when another Metrics already
	// registered the same names on it.
	Registerer prometheus.Registerer
	// ScrapeTimeout bounds each store query made while collecting the
	// scrape-time gauges (backlogs, waiting redeliveries). Default
	// DefaultScrapeTimeout (5s).
	ScrapeTimeout time.Duration
	// Clock computes ages at scrape time. Default clock.Real{}; give the store's
	// clock in tests that fake time.
	Clock clock.Clock
	// Topics are topics whose series of every topic-labelled family are
	// created at New with value 0, so dashboards and alerts see them before
	// the first event. Default none: a topic's series appear together, all at
	// 0 but the one counted, at its first event.
	Topics []string
}

func (c *Config) setDefaults() {
	c.Topics = append([]string(nil), c.Topics...)
	if c.ScrapeTimeout == 0 {
		c.ScrapeTimeout = DefaultScrapeTimeout
	}
	c.Clock = clock.OrReal(c.Clock)
}

// Validate reports every problem of the config at once, each error wrapping
// ErrInvalidConfig and naming its field ("metrics: invalid config: <Field>:
// <reason>").
func (c Config) Validate() error {
	var errs []error
	if c.Registerer == nil {
		errs = append(errs, fmt.Errorf("%w: Registerer: required", ErrInvalidConfig))
	}
	if c.ScrapeTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: ScrapeTimeout: %v: must not be negative", ErrInvalidConfig, c.ScrapeTimeout))
	}
	return errors.Join(errs...)
}

// Metrics holds reliamq's Prometheus collectors and hands out the hooks that
// feed them. One Metrics per registry; it is safe for concurrent use.
type Metrics struct {
	cfg    Config
	logger watermill.LoggerAdapter

	publishAttempts  *prometheus.CounterVec
	publishRetries   *prometheus.CounterVec
	publishPermanent *prometheus.CounterVec
	publishGiveUps   *prometheus.CounterVec
	publishDuration  *prometheus.HistogramVec

	fallbackWrites *prometheus.CounterVec
	relaySends     *prometheus.CounterVec
	relayPoisoned  *prometheus.CounterVec
	relayOutages   prometheus.Counter
	relayDown      prometheus.Gauge
	fallbackStored *prometheus.HistogramVec

	redeliveryScheduled *prometheus.CounterVec
	redeliveryFired     *prometheus.CounterVec
	redeliveryPubFailed *prometheus.CounterVec
	redeliveryDropped   *prometheus.CounterVec
	deadLettered        *prometheus.CounterVec
	dlqReplays          *prometheus.CounterVec
	handlerDuration     *prometheus.HistogramVec
	redeliveryDelay     *prometheus.HistogramVec

	scrapeErrors prometheus.Counter

	watched *watched

	topics sync.Map // topic -> *topicCounters, for the per-attempt hot path
	known  sync.Map // topic, handlerKey or dlqKey -> struct{}: series created
}

type handlerKey struct{ group, handler string }

type attemptsKey struct{ group, handler string }

type dlqKey struct{ topic, group, handler string }

// New creates the collectors and registers them on cfg.Registerer.
// A nil logger becomes watermill.NopLogger; it only receives scrape-time
// store errors.
func New(cfg Config, logger watermill.LoggerAdapter) (*Metrics, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	m := &Metrics{cfg: cfg, logger: logger.With(watermill.LogFields{"component": "metrics"})}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	m.publishAttempts = counter("publish_attempts_total",
		"Messages sent to the broker publisher, by attempt outcome (ok, error, permanent, canceled); every retry is an attempt.", "topic", "outcome")
	m.publishRetries = counter("publish_retries_total",
		"Messages whose failed send will be tried again after a backoff.", "topic")
	m.publishPermanent = counter("publish_permanent_failures_total",
		"Messages whose send failed with a permanent error (never retried, never stored).", "topic")
	m.publishGiveUps = counter("publish_give_ups_total",
		"Messages whose retried Publish returned an error, by why retrying stopped (permanent, exhausted, budget, canceled).", "topic", "outcome")
	m.fallbackWrites = counter("fallback_writes_total",
		"Messages the fallback publisher wrote to the store after a failed send (stored), or could not (not_stored).", "topic", "outcome")
	m.relaySends = counter("relay_sends_total",
		"Relay sends of stored messages, by outcome (ok: row deleted, error: rescheduled).", "topic", "outcome")
	m.relayPoisoned = counter("relay_poisoned_total",
		"Stored messages the relay moved to the poison queue or topic.", "topic")
	m.relayOutages = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "relay_outages_total",
		Help: "Times a relay decided its publisher was down and switched to probing."})
	m.relayDown = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "relay_down",
		Help: "Relays currently probing a publisher they consider down."})
	m.redeliveryScheduled = counter("redelivery_scheduled_total",
		"Failed consumptions scheduled for redelivery, by the number of the coming retry (1.."+strconv.Itoa(MaxAttemptLabel)+", then 17+).",
		"consumer_group", "handler", "attempt")
	m.redeliveryFired = counter("redelivery_fired_total",
		"Due messages published to the retry topic, by retry number.", "consumer_group", "handler", "attempt")
	m.redeliveryPubFailed = counter("redelivery_publish_failures_total",
		"Failed publishes of due messages to the retry topic (tried again later).", "consumer_group", "handler")
	m.redeliveryDropped = counter("redelivery_dropped_total",
		"Failed messages acknowledged without retry nor dead-lettering (broadcast, dropped permanent errors).", "consumer_group", "handler")
	m.deadLettered = counter("dead_lettered_total",
		"Messages published to the dead-letter topic, by the topic they were consumed from.", "topic", "consumer_group", "handler")
	m.dlqReplays = counter("dlq_replays_total",
		"Dead-lettered messages replayed to their original topic, by outcome (ok, error).", "topic", "outcome")
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	}
	m.publishDuration = histogram("publish_duration_seconds",
		"Duration of each call to the broker publisher (every attempt of a retried Publish, batches as one call), by outcome (ok, error).",
		SendBuckets, "topic", "outcome")
	m.fallbackStored = histogram("fallback_stored_seconds",
		"Time a message spent in the fallback table, from the row's creation to the relay's successful send.",
		WaitBuckets, "topic")
	m.handlerDuration = histogram("handler_duration_seconds",
		"Duration of each handler run under the redelivery middleware, by outcome (ok, error).",
		SendBuckets, "consumer_group", "handler", "outcome")
	m.redeliveryDelay = histogram("redelivery_delay_seconds",
		"Time a failed message actually waited, from the failure that scheduled the retry to its publish to the retry topic (InMemory and Durable modes).",
		WaitBuckets, "consumer_group", "handler")
	m.scrapeErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "scrape_errors_total",
		Help: "Store queries that failed while collecting scrape-time gauges; the affected gauges are left out of that scrape."})
	m.watched = newWatched(m)

	cs := []prometheus.Collector{
		m.publishAttempts, m.publishRetries, m.publishPermanent, m.publishGiveUps, m.publishDuration,
		m.fallbackWrites, m.relaySends, m.relayPoisoned, m.relayOutages, m.relayDown, m.fallbackStored,
		m.redeliveryScheduled, m.redeliveryFired, m.redeliveryPubFailed, m.redeliveryDropped,
		m.deadLettered, m.dlqReplays, m.handlerDuration, m.redeliveryDelay, m.scrapeErrors, m.watched,
	}
	for i, c := range cs {
		if err := cfg.Registerer.Register(c); err != nil {
			for _, done := range cs[:i] {
				cfg.Registerer.Unregister(done)
			}
			return nil, fmt.Errorf("metrics: registering collectors: %w", err)
		}
	}
	for _, t := range cfg.Topics {
		m.initTopic(t)
	}
	return m, nil
}

// initTopic creates, at 0, every series of topic in the topic-labelled
// families, once: an alert on a counter that never moved then sees 0, not
// an absent series.
func (m *Metrics) initTopic(topic string) {
	if _, done := m.known.LoadOrStore(topic, struct{}{}); done {
		return
	}
	for _, o := range []string{OutcomeOK, OutcomeError, OutcomePermanent, OutcomeCanceled} {
		m.publishAttempts.WithLabelValues(topic, o)
	}
	m.publishRetries.WithLabelValues(topic)
	m.publishPermanent.WithLabelValues(topic)
	for _, o := range giveUpOutcomes {
		m.publishGiveUps.WithLabelValues(topic, o)
	}
	m.publishDuration.WithLabelValues(topic, OutcomeOK)
	m.publishDuration.WithLabelValues(topic, OutcomeError)
	m.fallbackWrites.WithLabelValues(topic, OutcomeStored)
	m.fallbackWrites.WithLabelValues(topic, OutcomeNotStored)
	m.relaySends.WithLabelValues(topic, OutcomeOK)
	m.relaySends.WithLabelValues(topic, OutcomeError)
	m.relayPoisoned.WithLabelValues(topic)
	m.fallbackStored.WithLabelValues(topic)
	m.dlqReplays.WithLabelValues(topic, OutcomeOK)
	m.dlqReplays.WithLabelValues(topic, OutcomeError)
}

// initHandler creates, at 0, the series of one handler of one consumer group
// in the redelivery families, once. native leaves out what Native mode never
// reports.
func (m *Metrics) initHandler(group, handler string, native bool) {
	if _, done := m.known.LoadOrStore(handlerKey{group, handler}, struct{}{}); done {
		return
	}
	m.redeliveryDropped.WithLabelValues(group, handler)
	m.handlerDuration.WithLabelValues(group, handler, OutcomeOK)
	m.handlerDuration.WithLabelValues(group, handler, OutcomeError)
	if !native {
		m.redeliveryPubFailed.WithLabelValues(group, handler)
		m.redeliveryDelay.WithLabelValues(group, handler)
	}
	for _, t := range m.cfg.Topics {
		m.initDeadLetter(t, group, handler)
	}
}

// initAttempts creates, at 0, the attempt series of one handler, once:
// 1..retries, the policy's retry limit (-1 unlimited), capped at "17+".
func (m *Metrics) initAttempts(group, handler string, retries int, native bool) {
	if _, done := m.known.LoadOrStore(attemptsKey{group, handler}, struct{}{}); done {
		return
	}
	n := retries
	if n < 0 || n > MaxAttemptLabel {
		n = MaxAttemptLabel + 1
	}
	for a := 1; a <= n; a++ {
		m.redeliveryScheduled.WithLabelValues(group, handler, attemptLabel(a))
		if !native {
			m.redeliveryFired.WithLabelValues(group, handler, attemptLabel(a))
		}
	}
}

// initDeadLetter creates dead_lettered_total{topic,group,handler} at 0, once.
func (m *Metrics) initDeadLetter(topic, group, handler string) {
	if _, done := m.known.LoadOrStore(dlqKey{topic, group, handler}, struct{}{}); done {
		return
	}
	m.deadLettered.WithLabelValues(topic, group, handler)
}

// attemptLabel keeps the attempt label bounded.
func attemptLabel(n int) string {
	if n > MaxAttemptLabel {
		return strconv.Itoa(MaxAttemptLabel+1) + "+"
	}
	if n < 0 {
		n = 0
	}
	return strconv.Itoa(n)
}
