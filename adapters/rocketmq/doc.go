// Package rocketmq is a Watermill Publisher and Subscriber for Apache
// RocketMQ over github.com/apache/rocketmq-client-go/v2 (v2.1.2). Use them
// anywhere a message.Publisher or message.Subscriber goes: a Router, a CQRS
// bus, or under reliamq's middleware, where the publisher sits innermost:
// async(fallback(retry(rocketmq.Publisher))).
//
//	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{"127.0.0.1:9876"}}, logger)
//	sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{
//		NameServers: []string{"127.0.0.1:9876"}, ConsumerGroup: "billing"}, logger)
//
// For tests, rocketmqtest runs a name server and broker in process.
//
// # Native redelivery
//
// NewNativeScheduler is middleware/redelivery's scheduler for this broker
// (Config.Scheduler): with a Subscriber in BrokerRetry mode the wait of a
// failed message lives in the broker's %RETRY%<group>, not in the process
// nor in a store. It marks each failed delivery with metadata.DelayLevel,
// the smallest of the broker's delay levels that waits at least the
// middleware's delay (DelayLevelFor over DelayLevels, 1s 5s 10s 30s 1m ...
// 2h, or NativeConfig.DelayLevels), and metadata.RetryDelayMillis, the delay
// itself, which a Subscriber with TimerRetry waits exactly on a 5.x broker
// with timer messages. These are the same nack controls a handler without
// the middleware may set; the subscriber reads nothing else.
//
//	rd, err := redelivery.New(redelivery.Config{ConsumerGroup: "billing", Handler: "charge",
//		Scheduler: rocketmq.NewNativeScheduler(rocketmq.NativeConfig{}), DeadLetterPublisher: pub}, logger)
//
// The delay levels are written once in the module: DelayLevels,
// rocketmqtest.DefaultDelayLevels and policy.RocketMQ() (levels 3..18) read
// the same table.
//
// # Metadata and properties
//
// Published messages carry:
//   - the Watermill UUID in the property PropertyUUID ("RELIAMQ_UUID");
//   - metadata.Tags, metadata.Keys, metadata.DelayLevel and
//     metadata.ShardingKey as the broker's TAGS, KEYS, DELAY and SHARDING_KEY
//     (the send controls), and metadata.DelayMillis and
//     metadata.DeliverAtMillis as the RocketMQ 5.x timer properties
//     TIMER_DELAY_MS and TIMER_DELIVER_MS (exact delays; refused with
//     ErrTimerUnsupported where a broker of the topic has no timer messages,
//     as 4.x brokers);
//   - every other metadata entry as the property PropertyMetadataPrefix+key
//     ("reliamq.<key>"), value unchanged, so keys such as DELAY or TAGS in
//     user metadata cannot change broker behaviour; an entry whose value is
//     empty as PropertyEmptyMetadataPrefix+key ("reliamq-empty.<key>", value
//     "1"), because RocketMQ brokers drop properties with empty values on
//     single sends and on every retry, dead-letter and delay copy.
//
// Delivered messages carry the UUID that was published (for a message from a
// plain RocketMQ producer, its MsgId), the user metadata under its original
// keys, metadata.Tags, metadata.Keys and metadata.ShardingKey when set, and
// the delivery facts metadata.ReconsumeTimes ("reliamq_reconsume_times"),
// metadata.RocketMQMsgID (stable across broker redeliveries),
// metadata.RocketMQOffsetMsgID, metadata.RocketMQTopic (the original topic,
// also for redeliveries from %RETRY%<group>), metadata.RocketMQQueueID,
// metadata.RocketMQQueueOffset, metadata.RocketMQBornTimestamp and
// metadata.RocketMQStoreTimestamp (Unix milliseconds), plus metadata.Broadcast
// = "true" on broadcasting subscriptions. Broker system properties (UNIQ_KEY,
// CLUSTER, REAL_TOPIC, MIN_OFFSET ...) never become metadata. DefaultMarshaler
// documents the mapping; a custom Marshaler can replace it.
//
// Metadata that cannot be encoded is rejected before anything is sent, with
// ErrInvalidMetadata: a key or value containing \x01 or \x02 (the wire
// separators), NUL or invalid UTF-8, or a properties block over
// MaxPropertiesSize - PropertiesHeadroom bytes (the protocol allows 32767; the
// headroom keeps room for what the client and the broker add, so a broker
// retry cannot fail on size). Topics must match ^[%|a-zA-Z0-9_-]+$ and have
// at most 127 characters (ErrInvalidTopic), and Publish refuses the topics
// RocketMQ reserves (ErrReservedTopic: system topics such as TBW102, and the
// %RETRY%/%DLQ% topics of consumer groups; see ValidatePublishTopic);
// payloads at most MaxMessageSize, 4 MiB by default (ErrMessageTooLarge). A
// message UUID must not be empty (ErrEmptyUUID) and is at most 255 bytes of
// UTF-8 without control characters (ErrInvalidUUID). These rules are those of
// pkg/msgcheck, which every reliamq publisher and the SQL store apply, and
// Publisher.Check reports a violation without sending.
//
// # Errors
//
// Every error matches a sentinel with errors.Is. NewPublisher and
// NewSubscriber return ErrInvalidConfig for a bad config, one
// "rocketmq: invalid config: <Field>: <reason>" per problem. Bad input
// (ErrInvalidTopic, ErrReservedTopic, ErrMessageTooLarge, ErrInvalidMetadata,
// ErrNilMessage, ErrEmptyUUID, ErrInvalidUUID), ErrNoPermission and ErrClosed
// are also policy.IsPermanent: reliamq's retry and fallback never
// retry or store them. Timeouts (ErrSendTimeout), refused or dropped
// connections, SYSTEM_ERROR, SYSTEM_BUSY, SERVICE_NOT_AVAILABLE, a topic
// without a route yet (unless brokers do not create topics: ErrTopicNotExist
// below) and non-OK send statuses match ErrBrokerUnavailable and
// IsRetryable. Send failures are *SendError values with the broker's
// response code and the index of the first unconfirmed message.
//
// ErrTopicNotExist tells an unknown topic from an unreachable broker. It is
// permanent when the name servers confirm that neither the topic nor TBW102
// has a route while they list brokers, and every listed master broker says
// in its configuration (GET_BROKER_CONFIG) that it does not create topics on
// first send (autoCreateTopicEnable=false): only an operator creating the
// topic helps and a retry would wait in vain. With no broker registered (all
// stopped) nothing has a route, and the error stays retryable; so it does
// while a broker that creates topics, or that does not answer, is listed
// before its routes are, as a RocketMQ 5.x broker that has just started can
// be. A TOPIC_NOT_EXIST answer for a topic that has a route (being created
// or deleted) also matches ErrBrokerUnavailable and stays retryable.
//
// SendError.Accepted lists the UUIDs of the messages of a failed
// multi-message Publish that the broker confirmed; middleware/retry and
// middleware/fallback use it (retry.PartialError) to resend or store only the
// others, so a partial failure does not duplicate what was stored.
//
// # Delivery guarantees
//
// Publishing (SendSync, the default, and SendAsync): Publish returns nil only
// if the broker answered SEND_OK for every message. A retryable error may hide
// a stored message (the answer was lost or late), so retries are
// at-least-once, with the same UUID on every copy. Bad input is rejected for
// the whole Publish call before any message is sent. When a call with several
// messages fails, SendError.Index and SendError.Accepted tell which were
// stored (see Publisher).
// SendOneWay is at-most-once: no answer, no error on loss.
//
// Consuming: at-least-once. An offset is committed only after the message's
// Ack and the Acks of the other messages of its consume call
// (SubscriberConfig.ConsumeBatch, default 32, handed out one at a time
// while handlers are quick, at once within ConsumeGoroutines once one is
// slower than SplitAfter).
// Nacked messages are redelivered in process (default) or through the
// broker's retry topic and its delay levels up to MaxReconsumeTimes, then
// %DLQ%<group> (BrokerRetry); a nacked message's metadata.MaxReconsumeTimes,
// which middleware/redelivery sets from its Policy when its scheduler is the
// NativeScheduler, overrides the limit for that message. Messages in handlers when a subscription ends
// get CloseTimeout to be acked; unacked ones, those still unread in the
// output channel, and the acked messages of a consume call that had not
// finished (and those after it in the same queue: the client commits a
// queue's offset up to its oldest unfinished message) are redelivered to the
// group. Rebalances, broker restarts and late
// acks cause duplicates; deduplicate on the UUID. Broadcasting subscriptions
// never redeliver a nacked message. No
// ordering guarantee: queues are consumed concurrently.
//
// Consumer groups: RocketMQ requires every member of a group to subscribe to
// the same topics, and each Subscribe call is a member of its own, so by
// default topic T is consumed by the RocketMQ group <ConsumerGroup>_T
// (Subscriber.GroupFor); SubscriberConfig.SingleTopicGroup uses the group name
// as is.
//
// # Client defects
//
// rocketmq-client-go v2.1.2 has defects the adapter hides:
//   - an async send that times out panics inside the client and kills the
//     process unless primitive.PanicHandler is set: the first constructor sets
//     one (logging the panic) if none is set;
//   - its send timeout option is ignored (3 s per attempt, up to 4 attempts):
//     the adapter bounds every send with SendTimeout itself;
//   - SendSync can return a result with an error, or a non-OK status without
//     one: only SEND_OK with no error counts as sent;
//   - the first sends of a new producer can fail with "topic=<topic> route
//     info not found" (nothing sent) while another send's route lookup has
//     made the topic's queues visible but not yet stored the broker address:
//     the adapter sends again after 1, 2, 4 ... 64 ms, so a broker whose
//     master stays unknown costs a send 127 ms before its retryable error;
//   - batches carry no UNIQ_KEY, so a batched message's MsgId would change on
//     every broker redelivery, and the ids the client generates for single
//     sends count whole seconds with a 16-bit counter, so a process that
//     sends more than 65,536 messages in one second repeats them: the
//     publisher gives every message its own UNIQ_KEY, in the layout of the
//     Java client's ids (host, process, a random instance, milliseconds
//     since the month began, counter), which repeats only after 65,536 ids
//     in one millisecond, and keeps one a custom Marshaler set;
//   - Start fails for a topic without a route, and a new group's
//     %RETRY%<group> is only seen at the next 20 s rebalance: Subscribe
//     creates (or waits for) both routes first;
//   - clients are shared per process by instance name: every producer and
//     every subscription gets a unique one;
//   - Shutdown does not wait for running consume calls and discards their
//     results: subscriptions drain their handlers first;
//   - Shutdown closes each queue's message channel while a pull that has just
//     returned may still be sending to it, a "send on closed channel" panic
//     in a client goroutine: a clustering subscription first hands all its
//     queues back through an empty rebalance (offsets persisted as on any
//     rebalance), so Shutdown finds none (not possible while no broker
//     answers the group's member list, nor for broadcasting subscriptions);
//   - rlog logs at info level every few seconds and exits the process on
//     Fatal: RouteClientLogs (done by the first constructor) sends it to the
//     Watermill logger, errors only by default, never exiting, with message
//     contents removed; a line the client repeats (many times a second while
//     a name server or broker is down) goes out once per
//     SetClientLogInterval (10 s) with a count;
//   - routes are re-read every 30 s, and the client's send retries do not
//     avoid the broker that failed: the publisher chooses queues itself and
//     skips a broker a send failed on until the name servers list it again
//     (failover.go; docs/semantics.md "Brokers that die and come back");
//   - a pull parked on a broker that died waits out its 30 s timeout, and a
//     broker that comes back is only consumed after the next route refresh
//     and rebalance: each subscription reads its routes every
//     RoutePollInterval and drops or re-adds a broker's queues at once, about
//     0.2 to 4 s after the broker is back instead of about 33 s
//     (subscriber_routes.go); Subscriber.WaitReady waits for a subscription's
//     first queue assignment.
//
// And defects it cannot hide:
//   - the broker's answer to a consumer send-back is ignored, so in
//     BrokerRetry mode a nacked message that the broker refuses to take into
//     %RETRY%<group> (an error answer, as opposed to a network failure, which
//     the client retries) is lost: its offset is committed anyway;
//   - the client has data races (tests that run it are built with
//     //go:build !race) and leaves goroutines behind after Shutdown
//     (rocketmqtest.LeakOptions lists them);
//   - a connection dropped during a long poll stalls that queue for about
//     33 s while the broker stays in the route (a network cut);
//   - sends in flight to a broker when it dies wait out the client's fixed
//     3 s attempt timeout before they fail (the next attempt of a retry goes
//     elsewhere);
//   - broadcasting consumers keep offsets in local files under
//     $HOME/.rocketmq_client_go (or the directory in the environment
//     variable rocketmq.client.localOffsetStoreDir, read once at process
//     start), per client instance name;
//   - the admin requests that create topics carry no ACL credentials: with
//     ACL, create topics beforehand and set SkipTopicCreation.
package rocketmq
