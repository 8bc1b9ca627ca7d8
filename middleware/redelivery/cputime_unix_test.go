//go:build unix

package redelivery_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) the test process has used so
// far, every goroutine and the garbage collector included. The throughput
// benchmarks report it per healthy message: on a machine shared with other
// work it varies far less than the wall-clock rate.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
