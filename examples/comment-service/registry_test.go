package main

import (
	"runtime"
	"testing"

	"github.com/reliamq/reliamq/middleware/metrics"
)

// The issue: the demo's registry had no go_ and process_ collectors.
func TestNewRegistry_exports_go_process_and_reliamq_metrics(t *testing.T) {
	reg, err := newRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(metrics.Config{Registerer: reg, Topics: []string{TopicCommentPublished}}, nil); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	want := []string{"go_goroutines", "go_memstats_alloc_bytes", "reliamq_publish_attempts_total", "reliamq_fallback_writes_total"}
	if runtime.GOOS == "linux" { // the process collector reads /proc
		want = append(want, "process_cpu_seconds_total", "process_resident_memory_bytes")
	}
	for _, n := range want {
		if !have[n] {
			t.Errorf("the demo's registry has no %s", n)
		}
	}
}
