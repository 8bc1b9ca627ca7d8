// Package rocketmqlevels holds the Apache RocketMQ broker's default delay
// levels (its messageDelayLevel setting), the one copy in the module. The
// RocketMQ adapter publishes them as rocketmq.DelayLevels and maps delays
// onto them, the embedded broker uses them by default
// (rocketmqtest.DefaultDelayLevels), and pkg/policy's RocketMQ schedule is
// the consumer retries' part of them (levels 3..18). It is internal so that
// pkg/policy, which must not import an adapter, and the adapter share it.
package rocketmqlevels

import "time"

// levels is messageDelayLevel "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m
// 20m 30m 1h 2h", level 1 first.
var levels = [...]time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
	6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
}

// FirstRetryLevel is the level of a consumer's first retry: the broker sends
// a message back at 3 + its reconsume times, so consumer retries skip
// levels 1 and 2.
const FirstRetryLevel = 3

// Default returns the 18 default delay levels, level 1 first, in a new
// slice.
func Default() []time.Duration { return append([]time.Duration(nil), levels[:]...) }

// ConsumerRetries returns the consumer retry schedule: levels
// FirstRetryLevel..18 (10s 30s 1m ... 2h, 16 retries), in a new slice.
func ConsumerRetries() []time.Duration {
	return append([]time.Duration(nil), levels[FirstRetryLevel-1:]...)
}
