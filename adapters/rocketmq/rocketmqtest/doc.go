// Package rocketmqtest is an in-process RocketMQ name server and broker for
// tests, examples and local development. It speaks the real remoting
// protocol (JSON headers, the commit-log message layout) to the real
// github.com/apache/rocketmq-client-go/v2 v2.1.2 client and to any other
// RocketMQ client or tool, from one TCP address that serves as both name
// server and broker. The command in cmd/rocketmqtest serves it standalone.
//
// Start one with New (or NewTest inside a test), give NameServerAddr to the
// client's WithNameServer, and Close it when done:
//
//	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DelayScale: 0.001})
//	p, _ := rocketmq.NewProducer(producer.WithNameServer([]string{b.NameServerAddr()}))
//
// # What it implements
//
//   - Routes: topic auto-creation through TBW102 (Config.DisableAutoCreateTopics
//     turns it off), routes for any %RETRY%<group> on demand so a new consumer
//     group sees its first redelivery within the delay level rather than
//     after the client's 20 s rebalance.
//   - Consumer groups from heartbeats, with NOTIFY_CONSUMER_IDS_CHANGED on
//     every membership change (a join, a connection close, a member expiring
//     after Config.ClientExpiry without a heartbeat), so clients rebalance at
//     once. Consumer lists, orderly-consumption queue locks.
//   - Properties as the Apache broker parses them: a single send's
//     properties are written again without those whose name or value is
//     empty; a batch keeps them as sent until a copy (retry, dead letter,
//     delay re-put, transaction commit) drops them.
//   - Sends: single, batch, one-way, compressed; delayed by the DELAY
//     property (stored in SCHEDULE_TOPIC_XXXX until due); RocketMQ 5.x timer
//     messages (TIMER_DELAY_MS, TIMER_DELAY_SEC, TIMER_DELIVER_MS, stored in
//     rmq_sys_wheel_timer until due, rounded up to Config.TimerPrecision;
//     a delay level wins over them; Config.DisableTimerMessages behaves as
//     4.x and delivers at once), with GET_BROKER_CONFIG reporting
//     timerWheelEnable as a 5.x broker does; transactional
//     (half messages hidden in RMQ_SYS_TRANS_HALF_TOPIC until END_TRANSACTION,
//     with CHECK_TRANSACTION_STATE check-back); request-reply (replies pushed
//     to the requester).
//   - Pulls with tag filtering by the subscription from the heartbeat, and
//     long polling (Config.LongPollHold). SQL92 subscriptions are refused as
//     by a broker without property filtering.
//   - Consumer offsets: query, update, commit through pulls; what a new group
//     gets is Config.NewGroupOffset.
//   - Consumer send-back: to %RETRY%<group> after the delay level (3 +
//     reconsume times when the level is 0), reconsume times + 1,
//     ORIGIN_MESSAGE_ID and RETRY_TOPIC set; to %DLQ%<group> when reconsume
//     times reach the maximum or the level is negative.
//   - Admin: create, delete and list topics, cluster info, subscription
//     groups, query and view messages, consumer running info and direct
//     consumption forwarded to the consumer.
//   - Any other request code gets REQUEST_CODE_NOT_SUPPORTED.
//   - Malformed input as the Apache broker answers it (raw probes compared
//     with 4.9.4 and 5.2.0 in the tests): a frame whose header cannot be
//     decoded (bad JSON, a header length beyond the frame, a serialization
//     type other than JSON, a length prefix below 4 or above MaxFrameSize)
//     closes the connection unanswered; ext fields that are numbers or
//     booleans are read as their text; requests missing fields, and batch
//     bodies that do not decode, get SYSTEM_ERROR (which the client retries).
//
// # Guarantees
//
// Everything is kept in memory. A stored message stays until Close or
// DeleteTopic. A send answered with SUCCESS is stored and visible to pulls
// before the answer is written. Messages of a queue are delivered in offset
// order; requests of one connection are handled in the order they arrive,
// except held pulls and requests with injected latency. Stop and Restart keep
// topics, messages, offsets, pending delayed and half messages, so a test can
// restart the broker on the same port; by default Stop first answers held
// pulls with SERVICE_NOT_AVAILABLE, so consumers come back 3 s after Restart
// instead of after the client's 30 s pull timeout (StallConsumersOnRestart
// gives the real broker's stall instead). Close waits for every goroutine of
// the broker; the client's own leftover goroutines are covered by
// LeakOptions.
//
// # Fault injection
//
// Fail, FailRandomly, SetLatency and Silence act per request code; ClearFaults
// removes them; DropConnections closes every client connection abruptly, as
// a network failure would (a consumer whose long poll is cut then stalls for
// the client's 30 s pull timeout plus 3 s); Stop and Restart take the whole
// broker down and up; StallConsumersOnRestart makes a restart stall push
// consumers as a real broker's does (about 30 s: held pulls unanswered at
// the stop, pulls refused until the client's next heartbeat). All are safe
// to call while clients run.
//
// # What still differs from the real servers
//
// Measured against RocketMQ 4.9.4 and 5.2.0 (kit in ../shared/rocketmq):
//   - One address serves as name server and broker; a real broker answers
//     name-server requests (routes) with REQUEST_CODE_NOT_SUPPORTED. One
//     broker only: no second master, no slaves, no failover between brokers.
//   - Memory only. Offsets are stored as they arrive; a real broker flushes
//     them to disk every 5 s, so after its restart a group may get up to 5 s
//     of messages again.
//   - Without StallConsumersOnRestart, consumers resume about 3 s after a
//     restart; a real broker stalls them 15 to 33 s (31.5 s and 15.1 s after
//     the stop measured on 4.9.4). With it, the stall is usually the longer
//     one: a pull is nearly always held here (1 s holds), while a real broker
//     may have none held at the moment it stops.
//   - Long polls are held Config.LongPollHold (1 s), not the 20 s the client
//     asks for.
//   - Timer messages behave as on 5.x by default (4.x delivers them at once:
//     Config.DisableTimerMessages); GET_BROKER_CONFIG reports only names,
//     delay levels and timer settings.
//   - A single send with an empty body is stored (as 4.9.4 does; 5.2.0
//     answers SYSTEM_ERROR).
//   - RocketMQ 5.2.0 leaves an empty header, a binary-codec header and a
//     length prefix below 4 or above its limit unanswered on an open
//     connection; this broker closes it, as 4.9.4 does.
//   - Remarks of error answers are this broker's own (the real ones are
//     Java exception texts); responses carry version 401 (4.9.4) and no
//     serializeTypeCurrentRPC field; properties are written in sorted order.
//   - Routes of %RETRY%<group> topics are answered on demand (a real name
//     server knows them only after the group's first heartbeat); SQL92
//     filters, ACL, message traces, POP and gRPC are not implemented; a
//     delay level's re-put happens at its due time (a real broker scans every
//     100 ms).
//
// # Inspection
//
// Messages lists the messages of any topic, including retry, dead-letter,
// schedule and half topics, with their properties and reconsume times;
// ConsumerOffsets, ConsumerGroupMembers, Topics and PendingDelayed read the
// rest of the state.
package rocketmqtest
