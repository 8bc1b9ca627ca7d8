//go:build !unix

package benchmeter

import "time"

// ProcessCPU is not measured on this platform: ok is false.
func ProcessCPU() (time.Duration, bool) { return 0, false }
