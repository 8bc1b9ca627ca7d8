// Package metadata lists every Watermill metadata key that reliamq reads or
// writes, in one place, so handlers and operators read the same names whatever
// the backend.
//
// Keys fall in four groups:
//   - RocketMQ send controls, read by the RocketMQ publisher (Tags, Keys,
//     DelayLevel, ShardingKey, DelayMillis, DeliverAtMillis). They never
//     travel as user properties.
//   - Nack controls, read by a subscriber that hands nacked messages to its
//     broker (the RocketMQ one with BrokerRetry: DelayLevel, RetryDelayMillis,
//     MaxReconsumeTimes). A handler may set them; the RocketMQ adapter's
//     NativeScheduler sets the first two for middleware/redelivery, which
//     sets MaxReconsumeTimes.
//   - Delivery facts, written by subscribers on each delivered message
//     (ReconsumeTimes, Broadcast and the RocketMQ* keys).
//   - Redelivery and dead-letter facts, written by middleware/redelivery and
//     the fallback relay.
//
// All other metadata travels untouched as user properties. PerDelivery lists
// the keys that describe one send, nack or delivery: copies of a message
// published again (redeliveries, dead letters, replays) drop them.
package metadata

// RocketMQ send controls. The RocketMQ publisher maps these to the broker's
// system properties; other backends ignore them.
const (
	// Tags is the RocketMQ tag of the message (one tag; the broker filters on it).
	Tags = "rocketmq_tags"
	// Keys are the RocketMQ message keys, separated by single spaces.
	Keys = "rocketmq_keys"
	// DelayLevel is a RocketMQ delay level (1..18) for the send, as a decimal
	// string; the durations are the broker's messageDelayLevel
	// (rocketmq.DelayLevels lists the default ones). On a subscriber in
	// broker-retry mode it is also read on Nack to choose the retry delay
	// level ("-1": straight to %DLQ%<group>); rocketmq.DelayLevelFor picks
	// the level for a delay.
	DelayLevel = "rocketmq_delay_level"
	// ShardingKey selects the queue when the publisher uses hash queue selection,
	// so messages with the same key keep their order.
	ShardingKey = "rocketmq_sharding_key"
	// DelayMillis is an exact delay for the send, in milliseconds as a
	// decimal string (a RocketMQ 5.x timer message, TIMER_DELAY_MS): any
	// delay, not only the 18 levels. The broker delivers it at the send time
	// plus the delay rounded up to its timerPrecisionMs (1 s by default), so
	// never early. Brokers without timer messages (4.x, or 5.x with
	// timerWheelEnable=false) would deliver it at once: the RocketMQ
	// publisher refuses such a send with rocketmq.ErrTimerUnsupported.
	// Exclusive with DelayLevel and DeliverAtMillis.
	DelayMillis = "rocketmq_delay_ms"
	// DeliverAtMillis is an exact delivery time for the send, in Unix
	// milliseconds as a decimal string (TIMER_DELIVER_MS), on a 5.x broker
	// clock; as DelayMillis otherwise.
	DeliverAtMillis = "rocketmq_deliver_at_ms"
	// RetryDelayMillis is read on Nack by a RocketMQ subscriber with
	// BrokerRetry and TimerRetry: the exact delay of the message's broker
	// retry, in milliseconds as a decimal string, waited through a 5.x timer
	// message (metadata.DelayLevel stays the fallback). The RocketMQ
	// adapter's NativeScheduler sets both for middleware/redelivery. Not a
	// send control: a message published with it is sent at once, the key
	// travelling as user metadata.
	RetryDelayMillis = "rocketmq_retry_delay_ms"
	// MaxReconsumeTimes is read on Nack by a RocketMQ subscriber in
	// broker-retry mode: how many broker redeliveries this message may have
	// before it goes to %DLQ%<group>, as a decimal string, "-1" for no limit.
	// It overrides the subscriber's own MaxReconsumeTimes for that message;
	// middleware/redelivery sets it from its Policy on every delivery it
	// nacks when its scheduler routes BySubscriber (the RocketMQ
	// NativeScheduler), so the policy is the only limit. Other backends and
	// the publisher give it no meaning.
	MaxReconsumeTimes = "reliamq_max_reconsume_times"
)

// PerDelivery returns the keys that describe one send, one nack or one
// delivery (the send controls that delay, the nack controls, Broadcast and
// the RocketMQ* delivery facts), in a new slice. middleware/redelivery and
// its Replay drop them from every copy they publish: a stale delay would
// delay the copy, and the facts belong to another delivery. Tags, Keys and
// ShardingKey stay with the message; ReconsumeTimes is rewritten.
func PerDelivery() []string {
	return []string{
		DelayLevel, DelayMillis, DeliverAtMillis, RetryDelayMillis, MaxReconsumeTimes, Broadcast,
		RocketMQMsgID, RocketMQOffsetMsgID, RocketMQTopic, RocketMQQueueID, RocketMQQueueOffset,
		RocketMQBornTimestamp, RocketMQStoreTimestamp,
	}
}

// Delivery facts. Subscribers set these on delivered messages.
const (
	// ReconsumeTimes is how many times the message was redelivered before this
	// delivery, as a decimal string ("0" on the first delivery). Both the RocketMQ
	// subscriber (from the broker) and middleware/redelivery set it, so a handler
	// reads one key on every backend.
	ReconsumeTimes = "reliamq_reconsume_times"
	// Broadcast is "true" on messages delivered by a broadcasting subscription;
	// middleware/redelivery never retries them.
	Broadcast = "reliamq_broadcast"

	// RocketMQMsgID is the stable message id (the UNIQ_KEY property, which the
	// reliamq publisher sets for every message), unchanged across broker
	// redeliveries.
	RocketMQMsgID = "rocketmq_msg_id"
	// RocketMQOffsetMsgID is the broker's offset message id of this stored copy.
	RocketMQOffsetMsgID = "rocketmq_offset_msg_id"
	// RocketMQTopic is the topic the message was published to (a redelivered
	// message reports its original topic, not %RETRY%<group>).
	RocketMQTopic = "rocketmq_topic"
	// RocketMQQueueID is the queue the message was read from.
	RocketMQQueueID = "rocketmq_queue_id"
	// RocketMQQueueOffset is the message's offset in that queue.
	RocketMQQueueOffset = "rocketmq_queue_offset"
	// RocketMQBornTimestamp is when the producer created the message (Unix ms).
	RocketMQBornTimestamp = "rocketmq_born_timestamp"
	// RocketMQStoreTimestamp is when the broker stored this copy (Unix ms).
	RocketMQStoreTimestamp = "rocketmq_store_timestamp"
)

// Redelivery and dead-letter facts, written by middleware/redelivery.
// OriginalUUID, FirstFailureTime, LastError, ConsumerGroup, OriginalTopic,
// Handler and RedeliveryCount travel on every redelivered message; the DLQ
// message adds DeadLetterReason, Attempts and, for panics, PanicStack.
const (
	// RedeliveryCount is middleware/redelivery's own count of redeliveries
	// with a scheduler that publishes to a retry topic (in-memory, durable). Handlers read ReconsumeTimes, which the
	// middleware sets from this key on every delivery; the separate key exists
	// because the RocketMQ subscriber overwrites ReconsumeTimes with the
	// broker's count on each delivery.
	RedeliveryCount = "reliamq_redelivery_count"
	// OriginalUUID is the UUID of the first delivery. The message UUID itself
	// also stays the same; this key survives tools that re-create messages.
	OriginalUUID = "reliamq_original_uuid"
	// FirstFailureTime is when the handler first failed, RFC 3339 with nanoseconds.
	FirstFailureTime = "reliamq_first_failure_time"
	// LastError is the text of the handler's last error.
	LastError = "reliamq_last_error"
	// OriginalTopic is the topic the message was consumed from.
	OriginalTopic = "reliamq_original_topic"
	// Handler is the name of the handler that failed.
	Handler = "reliamq_handler"
	// ConsumerGroup is the consumer group that failed (DLQ and retry messages).
	ConsumerGroup = "reliamq_consumer_group"
	// DeadLetterReason says why the message was dead-lettered: "max_attempts",
	// "permanent", "dead_letter_verdict" or "panic".
	DeadLetterReason = "reliamq_dead_letter_reason"
	// Attempts is how many times the handler ran on the message (DLQ messages).
	Attempts = "reliamq_attempts"
	// PanicStack is the stack of a handler panic (DLQ messages).
	PanicStack = "reliamq_panic_stack"
	// RetryTopic is the topic that reaches only the failed handler of the
	// failed consumer group (DLQ messages of the in-memory and durable
	// schedulers),
	// where redelivery.Replay sends the message back by default.
	RetryTopic = "reliamq_retry_topic"
)

// Fallback facts, written by the fallback relay on poisoned messages.
const (
	// FallbackAttempts is how many relay sends were tried.
	FallbackAttempts = "reliamq_fallback_attempts"
	// FallbackFirstError is the error that sent the message to the fallback store.
	FallbackFirstError = "reliamq_fallback_first_error"
	// FallbackLastError is the last relay error.
	FallbackLastError = "reliamq_fallback_last_error"
)
