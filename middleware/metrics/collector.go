package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reliamq/reliamq/internal/nilcheck"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/queue"
)

// watched is the collector of the scrape-time metrics: it reads the Stats of
// the components given to the Watch methods when Prometheus scrapes, so the
// components' hot paths carry no metric code at all.
type watched struct {
	m *Metrics

	backlog, due, oldestAge              *prometheus.Desc
	asyncDepth, asyncInFlight, asyncWork *prometheus.Desc
	asyncFill, asyncCapacity             *prometheus.Desc
	asyncMaxWorkers                      *prometheus.Desc
	asyncRejected, asyncCallerRuns       *prometheus.Desc
	asyncSends, asyncLeftovers           *prometheus.Desc
	waiting                              *prometheus.Desc

	mu          sync.Mutex
	stores      []storeQueue
	asyncs      []*async.Publisher
	redeliverys []*redelivery.Redelivery
}

type storeQueue struct {
	store queue.Queue
	queue string
}

func newWatched(m *Metrics) *watched {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
	}
	return &watched{
		m:               m,
		backlog:         d("fallback_backlog", "Rows waiting in the watched fallback store queues, due or not."),
		due:             d("fallback_due", "Rows of the watched fallback store queues whose next attempt time has come."),
		oldestAge:       d("fallback_oldest_age_seconds", "Age of the oldest row of the watched fallback store queues; 0 when they are empty."),
		asyncDepth:      d("async_queue_depth", "Publish calls waiting for an async worker."),
		asyncInFlight:   d("async_in_flight", "Publish calls being sent by async workers or callers now."),
		asyncWork:       d("async_workers", "Async worker goroutines running."),
		asyncFill:       d("async_queue_fill_ratio", "Queued Publish calls over queue capacity (0 to 1) of the fullest watched async publisher; at 1 its FullPolicy applies."),
		asyncCapacity:   d("async_queue_capacity", "Queue capacity (QueueCapacity) of the watched async publishers."),
		asyncMaxWorkers: d("async_max_workers", "Worker limit (MaxWorkers) of the watched async publishers."),
		asyncRejected:   d("async_rejections_total", "Publish calls the async publisher refused (queue full under Reject, closed, Block context ended)."),
		asyncCallerRuns: d("async_caller_runs_total", "Publish calls sent on the caller's goroutine because the async queue was full (CallerRuns)."),
		asyncSends: d("async_sends_total", "Publish calls the async publisher (its workers, or callers under CallerRuns) completed, by outcome: "+
			"accepted (the inner publisher returned nil: sent, or behind a fallback publisher possibly stored in the fallback table, see fallback_writes_total{outcome=\"stored\"}) or error.", "outcome"),
		asyncLeftovers: d("async_leftovers_total", "Publish calls still queued at Close and handed to Leftovers (or reported not sent)."),
		waiting:        d("redelivery_waiting", "Failed messages waiting for their next delivery (in-memory heap or durable store queue).", "consumer_group", "handler"),
	}
}

// WatchFallbackStore adds the rows of queue in store to reliamq_fallback_backlog,
// reliamq_fallback_due and reliamq_fallback_oldest_age_seconds, read with
// store.Stats at each scrape (bounded by Config.ScrapeTimeout). Several
// watched queues add up; the age is that of the oldest row among them.
// Watch the fallback queue (""), and the poison queue to alert on it. store
// is any queue.Queue, such as a *sqlstore.Store.
func (m *Metrics) WatchFallbackStore(store queue.Queue, name string) error {
	if nilcheck.IsNil(store) {
		return fmt.Errorf("%w: nil store", ErrInvalidArgument)
	}
	if err := queue.ValidateQueue(name); err != nil {
		return err
	}
	m.watched.mu.Lock()
	defer m.watched.mu.Unlock()
	m.watched.stores = append(m.watched.stores, storeQueue{store: store, queue: name})
	return nil
}

// WatchAsync adds p's counters and gauges (Stats) to the reliamq_async_*
// metrics at each scrape. Several publishers add up.
func (m *Metrics) WatchAsync(p *async.Publisher) error {
	if p == nil {
		return fmt.Errorf("%w: nil async publisher", ErrInvalidArgument)
	}
	m.watched.mu.Lock()
	defer m.watched.mu.Unlock()
	m.watched.asyncs = append(m.watched.asyncs, p)
	return nil
}

// WatchRedelivery reports the messages r has waiting in
// reliamq_redelivery_waiting: its in-memory heap (Stats.Waiting) or, with
// the Durable scheduler, the rows of its store queue "<group>/<handler>". A
// scheduler that routes by the subscriber (RocketMQ's native one) waits in
// the broker and reports 0.
func (m *Metrics) WatchRedelivery(r *redelivery.Redelivery) error {
	if r == nil {
		return fmt.Errorf("%w: nil redelivery", ErrInvalidArgument)
	}
	cfg := r.Config()
	native := cfg.Scheduler.Route() == redelivery.BySubscriber
	m.initHandler(cfg.ConsumerGroup, cfg.Handler, native)
	m.initAttempts(cfg.ConsumerGroup, cfg.Handler, redelivery.MaxReconsumeTimes(cfg.Policy), native)
	m.watched.mu.Lock()
	defer m.watched.mu.Unlock()
	m.watched.redeliverys = append(m.watched.redeliverys, r)
	return nil
}

// Describe sends every scrape-time descriptor.
func (w *watched) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{w.backlog, w.due, w.oldestAge, w.asyncDepth, w.asyncInFlight,
		w.asyncWork, w.asyncFill, w.asyncCapacity, w.asyncMaxWorkers, w.asyncRejected, w.asyncCallerRuns, w.asyncSends, w.asyncLeftovers, w.waiting} {
		ch <- d
	}
}

// Collect reads the watched components.
func (w *watched) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	stores := append([]storeQueue(nil), w.stores...)
	asyncs := append([]*async.Publisher(nil), w.asyncs...)
	reds := append([]*redelivery.Redelivery(nil), w.redeliverys...)
	w.mu.Unlock()

	// Every family is in every scrape, at 0 while nothing is watched.
	w.collectStores(ch, stores)
	w.collectAsyncs(ch, asyncs)

	type key struct{ group, handler string }
	waiting := map[key]float64{}
	failed := map[key]bool{}
	var order []key
	for _, r := range reds {
		cfg := r.Config()
		k := key{cfg.ConsumerGroup, cfg.Handler}
		if _, seen := waiting[k]; !seen {
			order = append(order, k)
			waiting[k] = 0
		}
		switch s := cfg.Scheduler.(type) {
		case *redelivery.Durable:
			st, err := w.stats(s.Config().Store, cfg.ConsumerGroup+"/"+cfg.Handler)
			if err != nil {
				failed[k] = true
				continue
			}
			waiting[k] += float64(st.Backlog)
		default:
			waiting[k] += float64(r.Stats().Waiting)
		}
	}
	for _, k := range order {
		if failed[k] {
			continue
		}
		ch <- prometheus.MustNewConstMetric(w.waiting, prometheus.GaugeValue, waiting[k], k.group, k.handler)
	}
}

func (w *watched) stats(s queue.Queue, name string) (queue.Stats, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.m.cfg.ScrapeTimeout)
	defer cancel()
	st, err := s.Stats(ctx, name)
	if err != nil {
		w.m.scrapeErrors.Inc()
		fields := watermill.LogFields{"queue": name}
		if t, ok := s.(interface{ Table() string }); ok {
			fields["table"] = t.Table()
		}
		w.m.logger.Error("Reading store stats for metrics failed", err, fields)
	}
	return st, err
}

// collectStores sends the fallback store gauges, summed over stores.
func (w *watched) collectStores(ch chan<- prometheus.Metric, stores []storeQueue) {
	now := w.m.cfg.Clock.Now()
	var backlog, due int64
	var oldest time.Time
	ok := true
	for _, s := range stores {
		st, err := w.stats(s.store, s.queue)
		if err != nil {
			ok = false
			continue
		}
		backlog += st.Backlog
		due += st.Due
		if !st.Oldest.IsZero() && (oldest.IsZero() || st.Oldest.Before(oldest)) {
			oldest = st.Oldest
		}
	}
	// A partial sum would look like a shrinking backlog: leave the gauges
	// out of this scrape instead.
	if ok {
		age := 0.0
		if !oldest.IsZero() && now.After(oldest) {
			age = now.Sub(oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(w.backlog, prometheus.GaugeValue, float64(backlog))
		ch <- prometheus.MustNewConstMetric(w.due, prometheus.GaugeValue, float64(due))
		ch <- prometheus.MustNewConstMetric(w.oldestAge, prometheus.GaugeValue, age)
	}
}

// collectAsyncs sends the async gauges and counters, summed over pools.
func (w *watched) collectAsyncs(ch chan<- prometheus.Metric, asyncs []*async.Publisher) {
	var sum async.Stats
	saturation := 0.0
	for _, p := range asyncs {
		st := p.Stats()
		// The fullest pool, not the pooled ratio: one saturated pool
		// falls back to its FullPolicy however empty the others are.
		if st.Capacity > 0 {
			saturation = max(saturation, float64(st.Queued)/float64(st.Capacity))
		}
		sum.Capacity += st.Capacity
		sum.MaxWorkers += st.MaxWorkers
		sum.Queued += st.Queued
		sum.InFlight += st.InFlight
		sum.Workers += st.Workers
		sum.Done += st.Done
		sum.Failed += st.Failed
		sum.Rejected += st.Rejected
		sum.CallerRan += st.CallerRan
		sum.Leftover += st.Leftover
	}
	ch <- prometheus.MustNewConstMetric(w.asyncDepth, prometheus.GaugeValue, float64(sum.Queued))
	ch <- prometheus.MustNewConstMetric(w.asyncInFlight, prometheus.GaugeValue, float64(sum.InFlight))
	ch <- prometheus.MustNewConstMetric(w.asyncWork, prometheus.GaugeValue, float64(sum.Workers))
	ch <- prometheus.MustNewConstMetric(w.asyncFill, prometheus.GaugeValue, saturation)
	ch <- prometheus.MustNewConstMetric(w.asyncCapacity, prometheus.GaugeValue, float64(sum.Capacity))
	ch <- prometheus.MustNewConstMetric(w.asyncMaxWorkers, prometheus.GaugeValue, float64(sum.MaxWorkers))
	ch <- prometheus.MustNewConstMetric(w.asyncRejected, prometheus.CounterValue, float64(sum.Rejected))
	ch <- prometheus.MustNewConstMetric(w.asyncCallerRuns, prometheus.CounterValue, float64(sum.CallerRan))
	ch <- prometheus.MustNewConstMetric(w.asyncSends, prometheus.CounterValue, float64(sum.Done), OutcomeAccepted)
	ch <- prometheus.MustNewConstMetric(w.asyncSends, prometheus.CounterValue, float64(sum.Failed), OutcomeError)
	ch <- prometheus.MustNewConstMetric(w.asyncLeftovers, prometheus.CounterValue, float64(sum.Leftover))
}
