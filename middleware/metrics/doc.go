// Package metrics exports reliamq's Prometheus metrics. It is the only reliamq
// package that imports prometheus/client_golang: the components report
// through their hook interfaces, callbacks and Stats methods, and this package
// turns those into collectors. A program that does not use it pays nothing.
//
// Metrics are opt-in: New registers its collectors on the
// prometheus.Registerer it is given and nowhere else. Wiring, one call per
// component:
//
//	m, err := metrics.New(metrics.Config{Registerer: reg}, logger)
//	retried, _ := retry.NewPublisher(rocketmqPublisher, retry.Config{Policy: p, Hooks: []any{m.RetryHooks()}}, logger)
//	fb, _ := fallback.NewPublisher(retried, fallback.Config{Store: st, Hooks: []any{m.Fallback()}}, logger)
//	relay, _ := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: rocketmqPublisher, Hooks: []any{m.Relay()}}, logger)
//	pool, _ := async.NewPublisher(fb, async.Config{Leftovers: ...}, logger)
//	_ = m.WatchAsync(pool)
//	_ = m.WatchFallbackStore(st, "")
//	rd, _ := redelivery.New(redelivery.Config{..., Hooks: []any{m.Redelivery()}}, logger)
//	_ = m.WatchRedelivery(rd)
//	redelivery.Replay(ctx, redelivery.ReplayConfig{..., Hooks: []any{m.Replay()}}, logger)
//
// RetryHooks count attempts from inside retry.Publisher, so an error the
// policy's Classifier stops counts as "permanent" like a policy.Permanent one.
// They are the only source of the publish_* families: to count the sends of a
// publisher that should not retry, put it behind a retry.Publisher with a
// one-attempt policy (policy.Policy{MaxAttempts: 1}) and RetryHooks.
//
// # Schema
//
// Every name starts with "reliamq_". Labels are limited to topic,
// consumer_group, handler, outcome and attempt; attempt is capped at "17+",
// and no label ever carries a message id. Counters count messages unless said
// otherwise.
//
//	publish_attempts_total{topic,outcome}        broker sends (RetryHooks); outcome ok|error|permanent|canceled
//	publish_retries_total{topic}                 failed attempts that will be retried (RetryHooks)
//	publish_permanent_failures_total{topic}      sends failed with an error the policy does not retry (RetryHooks)
//	publish_give_ups_total{topic,outcome}        failed Publish calls, permanent|exhausted|budget|canceled (RetryHooks)
//	publish_duration_seconds{topic,outcome}      histogram: each broker send, ok|error (RetryHooks, on retry.Config.Clock)
//	fallback_writes_total{topic,outcome}         stored|not_stored after a failed send (Fallback)
//	relay_sends_total{topic,outcome}             relay sends, ok|error (Relay)
//	relay_poisoned_total{topic}                  rows moved to poison (Relay)
//	relay_outages_total                          relay switched to probing (Relay)
//	relay_down                                   gauge: relays probing now (Relay)
//	fallback_stored_seconds{topic}               histogram: row creation to the relay's send (Relay)
//	fallback_backlog                             gauge: rows in watched store queues (WatchFallbackStore)
//	fallback_due                                 gauge: rows due now (WatchFallbackStore)
//	fallback_oldest_age_seconds                  gauge: age of the oldest row (WatchFallbackStore)
//	async_queue_depth, async_in_flight, async_workers      gauges (WatchAsync)
//	async_queue_fill_ratio                       gauge: depth/capacity of the fullest pool, 0..1 (WatchAsync)
//	async_queue_capacity, async_max_workers      gauges: configured limits (WatchAsync)
//	async_rejections_total, async_caller_runs_total,
//	async_sends_total{outcome}, async_leftovers_total      Publish calls, accepted|error (WatchAsync;
//	                                             accepted = the inner publisher returned nil: sent, or stored by a fallback)
//	redelivery_scheduled_total{consumer_group,handler,attempt}   (Redelivery)
//	redelivery_fired_total{consumer_group,handler,attempt}       due messages published (Redelivery; not in Native mode)
//	redelivery_publish_failures_total{consumer_group,handler}    (Redelivery)
//	redelivery_dropped_total{consumer_group,handler}             (Redelivery)
//	redelivery_waiting{consumer_group,handler}   gauge (WatchRedelivery)
//	dead_lettered_total{topic,consumer_group,handler}            (Redelivery)
//	dlq_replays_total{topic,outcome}             replayed dead letters, ok|error (Replay)
//	handler_duration_seconds{consumer_group,handler,outcome}     histogram: each handler run, ok|error (Redelivery)
//	redelivery_delay_seconds{consumer_group,handler}             histogram: failure to retry publish (Redelivery; not Native)
//	scrape_errors_total                          failed store reads at scrape time
//
// docs/operations-cli.md has the same table with alerting notes.
//
// Every family is present from the first scrape: unlabelled and scrape-time
// ones at 0 (also before anything is watched), and every known label
// combination at 0 — all outcomes of a topic in Config.Topics or once it is
// first seen, the attempts and outcomes of a watched Redelivery's handler.
//
// Waiting is not failing: a backoff wait counts nowhere, and a context
// cancellation is outcome "canceled", not "error". Scrape-time gauges read the
// store once per scrape per watched queue, bounded by Config.ScrapeTimeout; when
// a read fails the affected gauges are left out of that scrape (a partial sum
// would look like a shrinking backlog) and scrape_errors_total grows.
//
// All hooks only add to counters: they are safe for concurrent use, never
// block and never log.
package metrics
