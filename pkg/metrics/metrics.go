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
}

func (c *Config) setDefaults() {
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

	fallbackWrites *prometheus.CounterVec
	relaySends     *prometheus.CounterVec
	relayPoisoned  *prometheus.CounterVec
	relayOutages   prometheus.Counter
	relayDown      prometheus.Gauge

	redeliveryScheduled *prometheus.CounterVec
	redeliveryFired     *prometheus.CounterVec
	redeliveryPubFailed *prometheus.CounterVec
	redeliveryDropped   *prometheus.CounterVec
	deadLettered        *prometheus.CounterVec
	dlqReplays          *prometheus.CounterVec

	scrapeErrors prometheus.Counter

	watched *watched

	topics sync.Map // topic -> *topicCounters, for the per-attempt hot path
}

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
	m.scrapeErrors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "scrape_errors_total",
		Help: "Store queries that failed while collecting scrape-time gauges; the affected gauges are left out of that scrape."})
	m.watched = newWatched(m)

	cs := []prometheus.Collector{
		m.publishAttempts, m.publishRetries, m.publishPermanent, m.publishGiveUps,
		m.fallbackWrites, m.relaySends, m.relayPoisoned, m.relayOutages, m.relayDown,
		m.redeliveryScheduled, m.redeliveryFired, m.redeliveryPubFailed, m.redeliveryDropped,
		m.deadLettered, m.dlqReplays, m.scrapeErrors, m.watched,
	}
	for i, c := range cs {
		if err := cfg.Registerer.Register(c); err != nil {
			for _, done := range cs[:i] {
				cfg.Registerer.Unregister(done)
			}
			return nil, fmt.Errorf("metrics: registering collectors: %w", err)
		}
	}
	return m, nil
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
