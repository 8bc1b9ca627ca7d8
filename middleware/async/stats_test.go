package async_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/middleware/async"
)

func TestStats_reports_the_queue_capacity_and_max_workers_after_defaults(t *testing.T) {
	tests := []struct {
		name           string
		cfg            async.Config
		wantCapacity   int
		wantMaxWorkers int
	}{
		{"defaults", async.Config{}, async.DefaultQueueCapacity, async.DefaultMaxWorkers},
		{"explicit", async.Config{CoreWorkers: 2, MaxWorkers: 3, QueueCapacity: 7}, 7, 3},
		{"max workers raised to core workers", async.Config{CoreWorkers: 60}, async.DefaultQueueCapacity, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := newPublisher(t, newRecorder(), tt.cfg)
			t.Cleanup(func() { _ = pub.Close() })
			st := pub.Stats()
			got := [2]int{st.Capacity, st.MaxWorkers}
			if diff := cmp.Diff([2]int{tt.wantCapacity, tt.wantMaxWorkers}, got); diff != "" {
				t.Fatalf("[Capacity MaxWorkers] (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStats_queued_over_capacity_reaches_one_when_the_queue_is_full(t *testing.T) {
	pub, rec := fullPool(t, async.Reject, newResults())
	st := pub.Stats()
	if st.Capacity != 1 || st.Queued != st.Capacity || st.MaxWorkers != 1 || st.Workers != int64(st.MaxWorkers) {
		t.Fatalf("stats = %+v; want a full queue of capacity 1 and 1 of 1 workers", st)
	}
	close(rec.release)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
}
