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
// # Where the wait lives (Config.Mode, no default)
//
//   - InMemory: a timer heap driven by the Clock, served by one goroutine;
//     about 0.5 KB per waiting message plus its payload (docs/benchmarks.md).
//     Waiting messages are lost on crash or Close (Stats.LostOnClose).
//   - Durable: the message is inserted in a queue store (Config.Store, a
//     queue.Queue such as a *sqlstore.Store, queue
//     "<group>/<handler>") with its due time; one poller per Redelivery claims
//     due rows every PollInterval, publishes them to the retry topic and deletes
//     them. The poller is a fallback.Relay on that queue (the module's one
//     claim/publish/delete loop: lease cut-off, outage probing), retrying a
//     failed publish every PublishRetryInterval without limit; a row the
//     publisher refuses permanently goes to the queue "<group>/<handler>/poison".
//     Rows survive restarts; the store's leases let several instances
//     share the queue, each row published by one at a time. The poller starts
//     at Start, which AddHandler calls once the retry topic is subscribed, so
//     nothing is published to a topic nobody listens to yet.
//   - Native: for a RocketMQ subscriber in broker-retry mode. The middleware
//     sets metadata.DelayLevel to DelayLevelFor(delay), and
//     metadata.RetryDelayMillis to the delay itself (a subscriber with
//     TimerRetry waits exactly that long on a RocketMQ 5.x broker), and
//     returns the error;
//     the subscriber nacks and the broker redelivers through %RETRY%<group>
//     with its own reconsume count. The policy is the only limit: every nack
//     carries metadata.MaxReconsumeTimes = MaxReconsumeTimes(policy) (-1 when
//     unlimited), which the subscriber uses instead of its own
//     MaxReconsumeTimes, so the broker never moves a message to %DLQ%<group>
//     before the middleware dead-letters it, with full metadata, after
//     exactly Policy.MaxAttempts deliveries. The broker resends the message as first
//     stored, so FirstFailureTime and LastError are not carried between
//     native redeliveries, and Policy.MaxElapsed (measured from
//     FirstFailureTime) does not apply in Native mode.
//
// # Consumer groups and the retry topic
//
// In InMemory and Durable modes a due message is published to the retry
// topic of its group and handler (default DefaultRetryTopic(group, handler),
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
// Transport facts (RocketMQ ids, queue, offset, DelayLevel) are not copied.
// The dead letter also names its RetryTopic (InMemory and Durable modes), where
// Replay sends it back so that only the failed handler of the failed group sees
// it again (ReplayConfig.ToOriginalTopic republishes to every group).
//
// # Delivery guarantees
//
// At-least-once. A failed delivery is acknowledged only after the retry is
// scheduled (heap or committed row) or the dead-letter publish succeeded;
// otherwise it is nacked and the backend redelivers it with the same count.
// Duplicates: a publish to the retry or dead-letter topic that succeeded but
// whose ack, or whose store delete, was lost. Losses: only InMemory mode, for
// messages still waiting at a crash or Close. Ordering is not kept for failed
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
// message actually waited), DeadLetteredHook and DroppedHook; Stats returns counters. Hooks run on the
// handler's or the scheduler's goroutine and must not block.
package redelivery
