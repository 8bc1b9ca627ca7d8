// Package redelivery is a Watermill router middleware that gives any backend
// RocketMQ's consumer retry semantics: a failed message is redelivered to the
// same handler of the same consumer group after 10s, 30s, 1m, 2m ... 2h (16
// retries by default, every 2h past the 16th when more are allowed), keeps its
// UUID, carries its reconsume count, and ends in a dead-letter topic.
//
// It sits on the consume side; the publish side is
// async(fallback(retry(rocketmq))) and is independent of it.
//
// # Outcomes
//
// The handler's result decides, in this order:
//
//   - nil: the message is acknowledged. A handler that catches its own errors
//     and returns nil stops the retries (RocketMQ's CommitMessage).
//   - a context error while the delivery's context is done (the router or
//     subscriber is shutting down): returned to the router, which nacks; not
//     counted as a failure.
//   - Broadcast (Config.Broadcast, or metadata.Broadcast == "true" set by a
//     broadcasting subscriber): never retried nor dead-lettered; logged,
//     counted (Stats.Dropped) and reported to DroppedHook, then acknowledged.
//   - DeadLetter(reason): to the dead-letter topic now (ReasonVerdict).
//   - RetryLater() or RetryAfter(d): retried on the policy's schedule, or after
//     d; always retried, but MaxAttempts still applies.
//   - policy.Permanent(err), or an error the policy's Classifier stops: to the
//     dead-letter topic without retry (ReasonPermanent), or dropped with
//     Config.DropPermanent.
//   - any other error, including a recovered panic (PanicError): retried after
//     Policy.Delay(n) (with the policy's jitter) until Policy.MaxAttempts or
//     MaxElapsed (counted from the first failure) is reached, then
//     dead-lettered (ReasonMaxAttempts, ReasonMaxElapsed). A context error the
//     handler got from a deadline of its own is an ordinary failure here.
//
// Policy.MaxAttempts counts the first delivery: RocketMQ's maxReconsumeTimes
// 16 is MaxAttempts 17 (policy.RocketMQ(), the default), 20 is
// policy.RocketMQ().WithMaxRetries(20).
//
// # Non-blocking
//
// A failed delivery is acknowledged as soon as its next attempt is scheduled;
// the wait never happens inside the handler, so the subscription keeps
// delivering later messages at full speed (Watermill's middleware.Retry
// sleeps in the handler and stalls a serial subscription for the whole
// backoff).
//
// # Where the wait lives (Config.Scheduler, no default)
//
// A Scheduler keeps a failed message until it is due. It gets what it needs
// from New (Target: the retry topic and its publisher, the clock, the
// logger, an Observer for stats and hooks) and from each Schedule call
// (Scheduled: the message, the retry number, the delay, the failure time);
// it never reaches into the Redelivery. Its Route says how the message comes
// back:
//
//   - NewInMemory (ByRetryTopic): a timer heap driven by the Clock, served by
//     one goroutine; about 0.8 KB per waiting message plus its payload
//     (BenchmarkInMemory_memory_per_waiting_message). Waiting messages are lost on crash or Close
//     (Stats.LostOnClose).
//   - NewDurable (ByRetryTopic): the message is inserted in a queue store
//     (DurableConfig.Store, a queue.Queue such as a *sqlstore.Store, queue
//     "<group>/<handler>") with its due time; one poller per Redelivery
//     claims due rows every PollInterval, publishes them to the retry topic
//     and deletes them. The poller is a fallback.Relay on that queue (the
//     module's one claim/publish/delete loop: lease cut-off, outage
//     probing), retrying a failed publish every PublishRetryInterval without
//     limit; a row the publisher refuses permanently goes to the queue
//     "<group>/<handler>/poison". Rows survive restarts; the store's leases
//     let several instances share the queue, each row published by one at a
//     time. The poller starts at Start, which AddHandler calls once the retry
//     topic is subscribed, so nothing is published to a topic nobody listens
//     to yet.
//   - A broker's own scheduler (BySubscriber), such as the RocketMQ adapter's
//     NewNativeScheduler for a Subscriber with BrokerRetry: it marks the
//     failed delivery for its subscriber (RocketMQ: the delay level and the
//     exact delay), the middleware returns the error, the subscriber nacks
//     and the broker redelivers with its own reconsume count
//     (metadata.ReconsumeTimes). The policy is the only limit: every nack
//     carries metadata.MaxReconsumeTimes = MaxReconsumeTimes(policy) (-1 when
//     unlimited), which such a subscriber uses instead of a limit of its own,
//     so the broker never dead-letters a message before the middleware does,
//     with full metadata, after exactly Policy.MaxAttempts deliveries. The
//     broker resends the message as first stored, so FirstFailureTime and
//     LastError are not carried between such redeliveries, and
//     Policy.MaxElapsed (measured from FirstFailureTime) does not apply.
//
// This package knows no broker: the RocketMQ delay levels and the metadata
// the RocketMQ subscriber reads on a nack belong to the adapter.
//
// # Consumer groups and the retry topic
//
// With a scheduler that routes ByRetryTopic a due message is published to
// the retry topic of its group and handler (default DefaultRetryTopic(group, handler),
// "reliamq_retry_<group>_<handler>", valid on every backend), which the same
// handler consumes with a subscriber of the same group: AddHandler registers
// the handler on both topics. Another group consuming the original topic
// never subscribes to that retry topic, so it never sees the retries. The
// message keeps its UUID; each redelivery carries metadata.ReconsumeTimes
// (also set to "0" on first deliveries, so handlers read one key on every
// backend, RocketMQ included), OriginalUUID, FirstFailureTime, LastError,
// ConsumerGroup, OriginalTopic and Handler, plus RedeliveryCount, the
// middleware's own count (subscribers may overwrite ReconsumeTimes).
//
// # Dead letters
//
// Dead-lettered messages go to Config.DeadLetterTopic (default
// DefaultDeadLetterTopic(group), "reliamq_dlq_<group>", like %DLQ%<group>)
// through DeadLetterPublisher, with the UUID and payload unchanged and the
// metadata above plus DeadLetterReason, Attempts, RedeliveryCount and, for
// panics, PanicStack. Read the count from Attempts or RedeliveryCount: the
// subscriber of the dead-letter topic may overwrite ReconsumeTimes with its
// own count (RocketMQ's does).
// Per-delivery keys (metadata.PerDelivery: broker ids, queue, offset, delay
// and nack controls) are not copied. The dead letter also names its
// RetryTopic (schedulers that route ByRetryTopic), where
// Replay sends it back so that only the failed handler of the failed group sees
// it again (ReplayConfig.ToOriginalTopic republishes to every group).
//
// # Delivery guarantees
//
// At-least-once. A failed delivery is acknowledged only after the retry is
// scheduled (heap or committed row) or the dead-letter publish succeeded;
// otherwise it is nacked and the backend redelivers it with the same count.
// Duplicates: a publish to the retry or dead-letter topic that succeeded but
// whose ack, or whose store delete, was lost. Losses: only the InMemory
// scheduler, for messages still waiting at a crash or Close. Ordering is not kept for failed
// messages: later messages overtake them by design.
//
// # Logging
//
// Every failure leaves one line on the logger given to New, never with the
// payload: a scheduled retry at debug level ("Failed message scheduled for
// redelivery"), a dead letter at error level ("Message dead-lettered"), a
// dropped or broadcast failure at error level. Each line carries
// message_uuid, topic, consumer_group, handler, attempt and reason
// (docs/operations.md lists the fields).
//
// # Hooks and stats
//
// Config.Hooks take any mix of HandledHook (every handler run, with its
// duration), RedeliveryScheduledHook, RedeliveredHook (with the time the
// message actually waited), DeadLetteredHook and DroppedHook; a value that
// implements none is refused. ReplayConfig.Hooks take ReplayedHook values.
// Stats returns counters. Hooks run on the handler's or the scheduler's
// goroutine and must not block.
package redelivery
