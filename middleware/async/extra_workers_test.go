package async_test

import (
	"testing"

	"github.com/reliamq/reliamq/middleware/async"
)

func TestPublisher_starts_an_extra_worker_only_when_a_call_finds_the_queue_full(t *testing.T) {
	rec := newRecorder()
	res := newResults()
	pub := newPublisher(t, rec, async.Config{CoreWorkers: 1, MaxWorkers: 2, QueueCapacity: 3, OnResult: res.on})
	if err := pub.Publish("t", msg("a", "block", "1")); err != nil {
		t.Fatal(err)
	}
	waitStarted(t, rec, "a")
	// The core worker is busy; calls wait in the queue until it is full.
	for _, id := range []string{"b", "c", "d"} {
		if err := pub.Publish("t", msg(id, "block", "1")); err != nil {
			t.Fatal(err)
		}
		if st := pub.Stats(); st.Workers != 1 {
			t.Fatalf("after queuing %s: %d workers; want 1 while the queue has room (stats %+v)", id, st.Workers, st)
		}
	}
	// The queue is full: the next call starts an extra worker, which takes it.
	if err := pub.Publish("t", msg("e", "block", "1")); err != nil {
		t.Fatal(err)
	}
	waitStarted(t, rec, "e")
	if st := pub.Stats(); st.Workers != 2 || st.Queued != 3 || st.CallerRan != 0 {
		t.Fatalf("stats = %+v; want 2 workers, 3 queued, nothing run by the caller", st)
	}
	close(rec.release)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Sent()); n != 5 {
		t.Fatalf("sent %v; want all 5", rec.Sent())
	}
}
