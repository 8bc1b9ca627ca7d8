//go:build !unix

package redelivery_test

import "time"

// processCPU is not measured on this platform; the benchmarks then report
// the wall-clock rate only.
func processCPU() (time.Duration, bool) { return 0, false }
