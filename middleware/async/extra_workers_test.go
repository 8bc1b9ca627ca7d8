package async_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
)

func TestPublisher_starts_an_extra_worker_only_when_a_call_finds_the_queue_full(t *testing.T) {
	rec := newRecorder()
	res := newResults()
	pub := newPublisher(t, rec, async.Config{CoreWorkers: 1, MaxWorkers: 2, QueueCapacity: 3, Hooks: []any{res}})
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

// blockingHook blocks the worker that reports the message "hold" until
// release is closed.
type blockingHook struct {
	holding chan struct{}
	release chan struct{}
}

func (h blockingHook) OnAsyncResult(r async.Result) {
	if r.Messages[0].UUID == "hold" {
		close(h.holding)
		<-h.release
	}
}

func TestPublisher_starts_no_extra_worker_while_a_worker_is_not_sending(t *testing.T) {
	// The only worker has finished sending "hold" and is still in its
	// ResultHook: it takes the next queued call as soon as it returns, so a
	// call that finds the queue full meanwhile gets no extra worker; under
	// CallerRuns the caller sends it.
	inner := &fakepub.Publisher{}
	h := blockingHook{holding: make(chan struct{}), release: make(chan struct{})}
	pub := newPublisher(t, inner, async.Config{CoreWorkers: 1, MaxWorkers: 2, QueueCapacity: 1, Hooks: []any{h}})
	if err := pub.Publish("t", msg("hold")); err != nil {
		t.Fatal(err)
	}
	<-h.holding
	if err := pub.Publish("t", msg("queued")); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("t", msg("caller")); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); st.Workers != 1 || st.CallerRan != 1 || st.Queued != 1 {
		t.Fatalf("stats = %+v; want 1 worker, 1 call run by the caller, 1 queued", st)
	}
	close(h.release)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"caller", "hold", "queued"}, sorted(inner.UUIDs())); diff != "" {
		t.Fatalf("sent (-want +got):\n%s", diff)
	}
}

func TestPublisher_under_reject_starts_an_extra_worker_rather_than_refuse_a_call(t *testing.T) {
	// As above, but a call refused under Reject would be lost to the
	// caller: a worker that may start takes it.
	inner := &fakepub.Publisher{}
	h := blockingHook{holding: make(chan struct{}), release: make(chan struct{})}
	pub := newPublisher(t, inner, async.Config{CoreWorkers: 1, MaxWorkers: 2, QueueCapacity: 1, FullPolicy: async.Reject, Hooks: []any{h}})
	for _, id := range []string{"hold", "queued", "extra"} {
		if err := pub.Publish("t", msg(id)); err != nil {
			t.Fatalf("Publish(%s) = %v", id, err)
		}
		if id == "hold" {
			<-h.holding
		}
	}
	if st := pub.Stats(); st.Workers != 2 || st.Rejected != 0 {
		t.Fatalf("stats = %+v; want 2 workers, nothing rejected", st)
	}
	close(h.release)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"extra", "hold", "queued"}, sorted(inner.UUIDs())); diff != "" {
		t.Fatalf("sent (-want +got):\n%s", diff)
	}
}
