// Package benchmeter measures the timed section of the project's benchmarks
// in two ways besides wall time: the process's CPU time, which other load on
// a shared machine disturbs less than wall time, and, under callgrind, the
// instructions the whole process executed (every goroutine, the garbage
// collector and the in-process broker included), which are the same from
// one run to the next.
//
// A section starts with Start and ends with Stop. Both call a marker function
// that does nothing, so that callgrind can zero its counters when the section
// starts and dump them when it ends:
//
//	valgrind --tool=callgrind --zero-before='*benchmeter.sectionStart' \
//	    --dump-before='*benchmeter.sectionEnd' ./x.test -test.bench ...
//
// The last dump of a benchmark (callgrind.out.<pid>.<n>, the highest n) is its
// final b.N run. docs/benchmarks.md uses it as an instruction count per
// message; scripts/callgrind-bench runs it.
package benchmeter

import "time"

// Meter is one measured section.
type Meter struct {
	cpu time.Duration
	ok  bool
}

// Start begins a section: it marks it for callgrind and reads the CPU time.
func Start() *Meter {
	sectionStart()
	cpu, ok := ProcessCPU()
	return &Meter{cpu: cpu, ok: ok}
}

// Stop ends the section and returns the process CPU time it took; ok is false
// where the platform does not report it.
func (m *Meter) Stop() (cpu time.Duration, ok bool) {
	end, ok := ProcessCPU()
	sectionEnd()
	return end - m.cpu, ok && m.ok
}

// sectionStart and sectionEnd are the callgrind markers: calls that stay in
// the binary (noinline) and do nothing.
//
//go:noinline
func sectionStart() {}

//go:noinline
func sectionEnd() {}
