package redelivery

import "time"

// delayLevels are the RocketMQ broker's default messageDelayLevel durations,
// level 1 first.
var delayLevels = [...]time.Duration{
	time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 3 * time.Minute, 4 * time.Minute, 5 * time.Minute,
	6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
}

// DelayLevelFor maps a delay onto the RocketMQ broker's 18 default delay
// levels (1s 5s 10s 30s 1m 2m ... 10m 20m 30m 1h 2h): the smallest level that
// waits at least d, so a retry never comes earlier than asked; delays above
// 2h give level 18. With policy.RocketMQ(), retry n maps to level n+2, the
// broker's own choice.
func DelayLevelFor(d time.Duration) int {
	for i, l := range delayLevels {
		if d <= l {
			return i + 1
		}
	}
	return len(delayLevels)
}
