// Package rocketmqtest is an in-process RocketMQ name server and broker for
// tests, examples and local development. It speaks the real remoting
// protocol (JSON headers, the commit-log message layout) to the real
// github.com/apache/rocketmq-client-go/v2 v2.1.2 client and to any other
// RocketMQ client or tool, from one TCP address that serves as both name
// server and broker.
//
// Start one with New (or NewTest inside a test), give NameServerAddr to the
// client's WithNameServer, and Close it when done:
//
//	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DelayScale: 0.001})
//	p, _ := rocketmq.NewProducer(producer.WithNameServer([]string{b.NameServerAddr()}))
//
// # What it implements
//
// Routes (topic auto-creation through TBW102, routes for any %RETRY%<group>
// on demand), heartbeats and consumer groups with NOTIFY_CONSUMER_IDS_CHANGED
// on every membership change (so clients rebalance at once), single, batch,
// one-way and delayed sends, pulls with tag filtering (using the
// subscription from the heartbeat) and long polling, consumer offsets,
// consumer send-back to %RETRY%<group> after the delay level and to
// %DLQ%<group> when reconsume times run out, orderly-consumption queue locks,
// and the admin requests to create, delete and list topics. Unknown request
// codes get REQUEST_CODE_NOT_SUPPORTED.
//
// # Guarantees
//
// Everything is kept in memory. A stored message stays until Close or
// DeleteTopic: Stop and Restart keep messages, offsets and pending delayed
// messages, so a test can simulate a broker restart on the same port. A send
// answered with SUCCESS is stored and visible to pulls before the answer is
// written. Messages of a queue are delivered in offset order. Close waits
// for every goroutine of the broker; the client's own leftover goroutines
// are covered by LeakOptions.
//
// # Fault injection
//
// Fail, FailRandomly, SetLatency and Silence act per request code; ClearFaults
// removes them; DropConnections closes every client connection; Stop and
// Restart take the whole broker down and up. All are safe to call while
// clients run.
package rocketmqtest
