package rocketmq

import (
	"time"

	"github.com/reliamq/reliamq/internal/rocketmqlevels"
)

// DelayLevels returns the Apache broker's default delay levels (its
// messageDelayLevel "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h
// 2h"), level 1 first, in a new slice: what metadata.DelayLevel n waits on a
// broker with the default setting. Consumer retries use levels 3..18, which
// are policy.RocketMQ()'s schedule; the embedded broker's
// rocketmqtest.DefaultDelayLevels are the same table.
func DelayLevels() []time.Duration { return rocketmqlevels.Default() }

// DelayLevelFor maps a delay onto the default delay levels (DelayLevels):
// the smallest level that waits at least d, so a retry never comes earlier
// than asked; delays above the last level (2h) give the last level, 18.
// With policy.RocketMQ(), retry n maps to level n+2, the broker's own
// choice.
func DelayLevelFor(d time.Duration) int { return levelFor(defaultLevels, d) }

// defaultLevels is DelayLevels, read by DelayLevelFor without a copy.
var defaultLevels = rocketmqlevels.Default()

// levelFor is DelayLevelFor on levels, which are ascending.
func levelFor(levels []time.Duration, d time.Duration) int {
	for i, l := range levels {
		if d <= l {
			return i + 1
		}
	}
	return len(levels)
}
