// Package brokersuite holds tests only: one test body run against three
// RocketMQ targets, so that what the embedded broker lets pass is also
// checked against the servers users run.
//
// Every test runs as subtests named after the target:
//
//	embedded  rocketmqtest.NewTest, a broker per test
//	4.9.4     the real Apache RocketMQ 4.9.4 cluster (one broker), servicetest.RocketMQ494
//	5.2.0     the real Apache RocketMQ 5.2.0 cluster (two brokers), servicetest.RocketMQ520
//
// The real clusters come from the environment (RELIAMQ_ROCKETMQ494_NAMESRV,
// RELIAMQ_ROCKETMQ494_DIR, RELIAMQ_ROCKETMQ520_NAMESRV,
// RELIAMQ_ROCKETMQ520_DIR, RELIAMQ_ROCKETMQ_SERVER; DEVELOPERS.md says how to
// start them). Without them the real subtests are skipped, and fail when CI
// is set. All three targets use the delay levels "1s 2s ... 18s" (level n
// waits n seconds), so the same body waits the same time everywhere.
//
// What runs: the adapter's Watermill conformance suite (with Watermill's
// short counts on the real clusters, see conformanceFeatures), metadata round trips
// (ASCII, unicode, empty and large values; single, batched and broker
// redelivered sends), delay levels, BrokerRetry redelivery (reconsume count,
// stable message id, UUID), %DLQ%<group> after MaxReconsumeTimes,
// broadcasting, middleware/redelivery in Native and Durable (SQLite) modes,
// and the fallback + relay story through a broker outage (brokers stopped
// and started again on their store). Messages are counted by UUID: sent,
// delivered, duplicated, lost.
//
// Tests that stop brokers take the cluster exclusively
// (servicetest.RocketMQServer.Exclusive) and run before the parallel tests;
// the others share it. Every test uses its own topics and consumer groups.
package brokersuite
