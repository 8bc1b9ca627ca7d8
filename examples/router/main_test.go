package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun_retries_on_schedule_and_dead_letters_with_correlation_ids(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(context.Background(), &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if err := res.Check(); err != nil {
		t.Errorf("%v\n%s", err, out.String())
	}
	// ok: once; declined twice: 3 runs; panics: MaxAttempts 4; invalid: permanent, once.
	want := map[string]int{"ok": 1, "declined-twice": 3, "panics": 4, "invalid": 1}
	got := map[string]int{}
	for name, id := range res.Orders {
		got[name] = res.Attempts[id]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("handler runs per order (-want +got):\n%s", diff)
	}
	for _, line := range []string{
		"middleware chain: CorrelationID > Recoverer > redelivery(in-memory, 100ms 300ms 600ms) > Timeout(1s) > handler",
		"reason permanent, attempts 1, correlation req-invalid",
		"reason max_attempts, attempts 4, correlation req-panics",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}
