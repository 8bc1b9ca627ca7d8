//go:build unix

package benchmeter_test

import (
	"testing"
	"time"

	"github.com/reliamq/reliamq/internal/benchmeter"
)

func TestMeter_counts_the_CPU_time_of_its_section(t *testing.T) {
	m := benchmeter.Start()
	// Burn CPU until the process clock has moved by at least 20 ms.
	begin, ok := benchmeter.ProcessCPU()
	if !ok {
		t.Fatal("ProcessCPU: not measured on a unix platform")
	}
	x := 0
	for {
		for i := 0; i < 1_000_000; i++ {
			x += i
		}
		if now, _ := benchmeter.ProcessCPU(); now-begin >= 20*time.Millisecond {
			break
		}
	}
	cpu, ok := m.Stop()
	if !ok {
		t.Fatal("Stop: CPU time not measured")
	}
	if cpu < 20*time.Millisecond || cpu > time.Minute {
		t.Fatalf("section took %v of CPU, want at least the 20ms burnt (x=%d)", cpu, x)
	}
}
