package async_test

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
)

func TestPublisher_sends_in_the_background_and_reports_each_result(t *testing.T) {
	gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 100}, watermill.NopLogger{})
	sub, err := gc.Subscribe(context.Background(), "orders")
	if err != nil {
		t.Fatal(err)
	}
	res := newResults()
	pub := newPublisher(t, gc, async.Config{Hooks: []any{res}})

	want := []string{}
	for i := 0; i < 50; i++ {
		m := message.NewMessage(watermill.NewUUID(), []byte("x"))
		want = append(want, m.UUID)
		if err := pub.Publish("orders", m); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	var got []string
	for range want {
		select {
		case m := <-sub:
			m.Ack()
			got = append(got, m.UUID)
		case <-time.After(10 * time.Second):
			t.Fatal("message not delivered")
		}
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("delivered (-want +got):\n%s", diff)
	}
	rs := res.get()
	if len(rs) != 50 {
		t.Fatalf("%d results; want 50", len(rs))
	}
	for _, r := range rs {
		if r.Err != nil || r.CallerRan || r.Leftover || r.Topic != "orders" || len(r.Messages) != 1 {
			t.Fatalf("result %+v", r)
		}
	}
	st := pub.Stats()
	if st.Done != 50 || st.Failed != 0 || st.Queued != 0 || st.InFlight != 0 || st.Workers != 0 {
		t.Fatalf("stats after Close = %+v", st)
	}
}

func TestPublisher_reports_failed_sends_to_the_result_hook(t *testing.T) {
	rec := newRecorder()
	res := newResults()
	pub := newPublisher(t, rec, async.Config{Hooks: []any{res}})
	defer pub.Close()
	if err := pub.Publish("t", msg("bad", "fail", "1")); err != nil {
		t.Fatalf("Publish = %v; want nil (the failure is reported later)", err)
	}
	r := res.next(t)
	if !errors.Is(r.Err, errSend) || r.Messages[0].UUID != "bad" {
		t.Fatalf("result = %+v; want errSend for bad", r)
	}
	if st := pub.Stats(); st.Failed != 1 || st.Done != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

type ctxKey struct{}

func TestPublisher_send_outlives_the_callers_cancelled_context(t *testing.T) {
	// An HTTP handler publishes with its request context and returns; the
	// request context is cancelled right away. The send must still happen.
	rec := newRecorder()
	res := newResults()
	pub := newPublisher(t, rec, async.Config{Hooks: []any{res}})
	defer pub.Close()

	var seen any
	inner := &fakepub.Publisher{Func: func(topic string, msgs []*message.Message) error {
		seen = msgs[0].Context().Value(ctxKey{})
		return rec.Publish(topic, msgs...)
	}}
	pub2 := newPublisher(t, inner, async.Config{Hooks: []any{res}})
	defer pub2.Close()

	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "request-42"))
	m := msg("m1", "block", "1")
	m.SetContext(ctx)
	if err := pub2.Publish("t", m); err != nil {
		t.Fatal(err)
	}
	waitStarted(t, rec, "m1")
	cancel() // the request ends while the send is in flight
	close(rec.release)
	r := res.next(t)
	if r.Err != nil {
		t.Fatalf("send failed after the caller's context ended: %v", r.Err)
	}
	if seen != "request-42" {
		t.Fatalf("context value seen by the inner publisher = %v; want request-42", seen)
	}
	if diff := cmp.Diff([]string{"m1"}, rec.Sent()); diff != "" {
		t.Fatalf("sent (-want +got):\n%s", diff)
	}
}

// fullPool returns a publisher with one worker busy on "w" and "q" queued, so
// the queue is full and no worker can start.
func fullPool(t *testing.T, policy async.FullPolicy, res *results) (*async.Publisher, *recorder) {
	t.Helper()
	rec := newRecorder()
	pub := newPublisher(t, rec, async.Config{CoreWorkers: 1, MaxWorkers: 1, QueueCapacity: 1, FullPolicy: policy, Hooks: []any{res}})
	if err := pub.Publish("t", msg("w", "block", "1")); err != nil {
		t.Fatal(err)
	}
	waitStarted(t, rec, "w")
	if err := pub.Publish("t", msg("q", "block", "1")); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); st.Queued != 1 || st.Workers != 1 || st.InFlight != 1 {
		t.Fatalf("stats = %+v; want 1 queued, 1 worker, 1 in flight", st)
	}
	return pub, rec
}

func TestPublisher_full_queue_reject_returns_ErrQueueFull(t *testing.T) {
	res := newResults()
	pub, rec := fullPool(t, async.Reject, res)
	err := pub.Publish("t", msg("x"))
	if !errors.Is(err, async.ErrQueueFull) {
		t.Fatalf("Publish = %v; want ErrQueueFull", err)
	}
	close(rec.release)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); st.Rejected != 1 || st.Done != 2 {
		t.Fatalf("stats = %+v; want 1 rejected, 2 done", st)
	}
	for _, r := range res.get() {
		if r.Messages[0].UUID == "x" {
			t.Fatal("a rejected call was also reported to the ResultHook")
		}
	}
	if diff := cmp.Diff([]string{"q", "w"}, sorted(rec.Sent())); diff != "" {
		t.Fatalf("sent (-want +got):\n%s", diff)
	}
}

func sorted(s []string) []string { sort.Strings(s); return s }

func TestPublisher_full_queue_caller_runs_sends_on_the_calling_goroutine(t *testing.T) {
	res := newResults()
	pub, rec := fullPool(t, async.CallerRuns, res)
	if err := pub.Publish("t", msg("c1")); err != nil {
		t.Fatalf("Publish = %v", err)
	}
	// The send happened before Publish returned.
	if diff := cmp.Diff([]string{"c1"}, rec.Sent()); diff != "" {
		t.Fatalf("sent (-want +got):\n%s", diff)
	}
	r := res.next(t)
	if !r.CallerRan || r.Err != nil || r.Messages[0].UUID != "c1" {
		t.Fatalf("result = %+v; want caller-ran success for c1", r)
	}
	// A failing caller-run send returns its error and reports it.
	if err := pub.Publish("t", msg("c2", "fail", "1")); !errors.Is(err, errSend) {
		t.Fatalf("Publish = %v; want errSend", err)
	}
	if r := res.next(t); !r.CallerRan || !errors.Is(r.Err, errSend) {
		t.Fatalf("result = %+v", r)
	}
	close(rec.release)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); st.CallerRan != 2 || st.Done != 3 || st.Failed != 1 {
		t.Fatalf("stats = %+v; want 2 caller-ran, 3 done, 1 failed", st)
	}
}

func TestPublisher_full_queue_block_waits_for_room(t *testing.T) {
	res := newResults()
	pub, rec := fullPool(t, async.Block, res)
	done := make(chan error, 1)
	go func() { done <- pub.Publish("t", msg("b")) }()
	select {
	case err := <-done:
		t.Fatalf("Publish returned %v while the queue was full", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(rec.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Publish = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish still blocked after room was made")
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b", "q", "w"}, sorted(rec.Sent())); diff != "" {
		t.Fatalf("sent (-want +got):\n%s", diff)
	}
}

func TestPublisher_full_queue_block_stops_when_the_message_context_ends(t *testing.T) {
	res := newResults()
	pub, rec := fullPool(t, async.Block, res)
	ctx, cancel := context.WithCancel(context.Background())
	m := msg("b")
	m.SetContext(ctx)
	done := make(chan error, 1)
	go func() { done <- pub.Publish("t", m) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Publish = %v; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Publish still blocked after its context ended")
	}
	if m.Context() != ctx {
		t.Fatal("a refused message should keep its own context")
	}
	close(rec.release)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if st := pub.Stats(); st.Rejected != 1 || st.Done != 2 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestPublisher_full_queue_block_returns_ErrClosed_when_closed(t *testing.T) {
	res := newResults()
	pub, rec := fullPool(t, async.Block, res)
	done := make(chan error, 1)
	go func() { done <- pub.Publish("t", msg("b")) }()
	closed := make(chan error, 1)
	go func() { closed <- pub.Close() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("blocked Publish not woken by Close")
	}
	close(rec.release)
	if cerr := <-closed; cerr != nil {
		t.Fatal(cerr)
	}
	// The Publish either got in before Close sealed the queue (then it was
	// sent) or was refused with ErrClosed; never both, never neither.
	sent := contains(rec.Sent(), "b")
	if (err == nil) != sent || (err != nil && !errors.Is(err, async.ErrClosed)) {
		t.Fatalf("Publish = %v, sent = %v", err, sent)
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func TestPublisher_publish_after_close_returns_ErrClosed(t *testing.T) {
	rec := newRecorder()
	pub := newPublisher(t, rec, async.Config{})
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("t", msg("late")); !errors.Is(err, async.ErrClosed) {
		t.Fatalf("Publish = %v; want ErrClosed", err)
	}
	if !rec.Closed() {
		t.Fatal("inner publisher not closed")
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestPublisher_starts_extra_workers_and_retires_them_after_keep_alive(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	rec := newRecorder()
	res := newResults()
	pub := newPublisher(t, rec, async.Config{CoreWorkers: 1, MaxWorkers: 3, QueueCapacity: 1, KeepAlive: time.Minute, Clock: clk, Hooks: []any{res}})
	defer pub.Close()

	// One core worker busy, one call queued, then two calls that find the
	// queue full: each starts an extra worker.
	if err := pub.Publish("t", msg("a", "block", "1")); err != nil {
		t.Fatal(err)
	}
	waitStarted(t, rec, "a")
	for _, id := range []string{"b", "c", "d"} {
		if err := pub.Publish("t", msg(id, "block", "1")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three busy workers", func() bool { st := pub.Stats(); return st.Workers == 3 && st.InFlight == 3 })
	if st := pub.Stats(); st.Queued != 1 {
		t.Fatalf("stats = %+v; want 1 queued", st)
	}
	close(rec.release)
	for range 4 {
		res.next(t)
	}
	// Both extra workers are idle now, each waiting on its keep-alive timer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntil(ctx, 2); err != nil {
		t.Fatalf("extra workers not waiting on keep-alive: %v", err)
	}
	clk.Advance(59 * time.Second)
	if st := pub.Stats(); st.Workers != 3 {
		t.Fatalf("workers = %d before keep-alive ran out; want 3", st.Workers)
	}
	clk.Advance(time.Second)
	waitFor(t, "extra workers to exit", func() bool { return pub.Stats().Workers == 1 })
	// The core worker stays and still works.
	if err := pub.Publish("t", msg("e")); err != nil {
		t.Fatal(err)
	}
	if r := res.next(t); r.Err != nil || r.Messages[0].UUID != "e" {
		t.Fatalf("result = %+v", r)
	}
	if w := pub.Stats().Workers; w != 1 {
		t.Fatalf("workers = %d; want 1", w)
	}
}

func TestPublisher_close_waits_for_queued_work_within_the_timeout(t *testing.T) {
	rec := newRecorder()
	res := newResults()
	left := newRecorder()
	pub := newPublisher(t, rec, async.Config{CoreWorkers: 1, MaxWorkers: 1, QueueCapacity: 10, Leftovers: left, Hooks: []any{res}})
	for _, id := range []string{"a", "b", "c"} {
		if err := pub.Publish("t", msg(id, "block", "1")); err != nil {
			t.Fatal(err)
		}
	}
	waitStarted(t, rec, "a")
	closed := make(chan error, 1)
	go func() { closed <- pub.Close() }()
	want := []string{"a", "b", "c"}
	waitFor(t, "Close to refuse new calls", func() bool {
		id := watermill.NewUUID()
		err := pub.Publish("t", msg(id))
		if err == nil {
			want = append(want, id) // got in before Close started: must be sent
		}
		return errors.Is(err, async.ErrClosed)
	})
	close(rec.release)
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if diff := cmp.Diff(want, rec.Sent()); diff != "" {
		t.Fatalf("sent (-want +got):\n%s", diff)
	}
	if len(left.Sent()) != 0 || pub.Stats().Leftover != 0 {
		t.Fatalf("leftovers %v although everything was sent in time", left.Sent())
	}
}

// busyPool returns a publisher whose single worker is stuck on "inflight" and
// whose queue holds n more calls; the clock is fake so the test decides when
// the close timeout runs out.
func busyPool(t *testing.T, leftovers message.Publisher, n int) (*async.Publisher, *recorder, *clocktest.Fake, *results, []string) {
	t.Helper()
	clk := clocktest.NewFake(time.Time{})
	rec := newRecorder()
	res := newResults()
	pub := newPublisher(t, rec, async.Config{
		CoreWorkers: 1, MaxWorkers: 1, QueueCapacity: n, CloseTimeout: 5 * time.Second,
		Clock: clk, Leftovers: leftovers, Hooks: []any{res}, FullPolicy: async.Reject,
	})
	ids := []string{"inflight"}
	if err := pub.Publish("t", msg("inflight", "block", "1")); err != nil {
		t.Fatal(err)
	}
	waitStarted(t, rec, "inflight")
	for i := 0; i < n; i++ {
		id := watermill.NewUUID()
		ids = append(ids, id)
		if err := pub.Publish("t", msg(id, "block", "1")); err != nil {
			t.Fatal(err)
		}
	}
	return pub, rec, clk, res, ids
}

// closeAfterTimeout closes pub, letting the fake clock pass the close timeout.
func closeAfterTimeout(t *testing.T, pub *async.Publisher, clk *clocktest.Fake) error {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- pub.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntil(ctx, 1); err != nil {
		t.Fatalf("Close is not waiting on its timeout: %v", err)
	}
	clk.Advance(5 * time.Second)
	select {
	case err := <-closed:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after its timeout")
		return nil
	}
}

func TestPublisher_close_while_busy_hands_everything_unsent_to_leftovers(t *testing.T) {
	left := newRecorder()
	close(left.release) // the store never blocks
	pub, rec, clk, res, ids := busyPool(t, left, 20)
	if err := closeAfterTimeout(t, pub, clk); err != nil {
		t.Fatalf("Close = %v; want nil (everything handed over)", err)
	}
	if got := rec.Sent(); len(got) != 0 {
		t.Fatalf("inner sent %v; nothing could be sent", got)
	}
	if diff := cmp.Diff(sorted(append([]string(nil), ids...)), sorted(left.Sent())); diff != "" {
		t.Fatalf("leftovers (-want +got):\n%s", diff)
	}
	rs := res.get()
	if len(rs) != len(ids) {
		t.Fatalf("%d results for %d calls", len(rs), len(ids))
	}
	for _, r := range rs {
		if !r.Leftover || r.Err != nil {
			t.Fatalf("result = %+v; want a successful leftover", r)
		}
		if err := r.Messages[0].Context().Err(); err != nil {
			t.Fatalf("leftover message handed over with a done context: %v", err)
		}
	}
	if st := pub.Stats(); st.Leftover != int64(len(ids)) || st.Workers != 0 || st.Queued != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestPublisher_close_while_busy_without_leftovers_reports_each_unsent_call(t *testing.T) {
	pub, _, clk, res, ids := busyPool(t, nil, 10)
	err := closeAfterTimeout(t, pub, clk)
	if !errors.Is(err, async.ErrNotSent) {
		t.Fatalf("Close = %v; want ErrNotSent", err)
	}
	var got []string
	for _, r := range res.get() {
		if !r.Leftover || !errors.Is(r.Err, async.ErrNotSent) {
			t.Fatalf("result = %+v; want ErrNotSent leftover", r)
		}
		got = append(got, r.Messages[0].UUID)
	}
	if diff := cmp.Diff(sorted(append([]string(nil), ids...)), sorted(got)); diff != "" {
		t.Fatalf("reported (-want +got):\n%s", diff)
	}
}

func TestPublisher_close_reports_calls_the_leftovers_publisher_refused(t *testing.T) {
	refuse := &fakepub.Publisher{Err: errSend}
	pub, _, clk, res, ids := busyPool(t, refuse, 3)
	err := closeAfterTimeout(t, pub, clk)
	if !errors.Is(err, async.ErrNotSent) {
		t.Fatalf("Close = %v; want ErrNotSent", err)
	}
	rs := res.get()
	if len(rs) != len(ids) {
		t.Fatalf("%d results for %d calls", len(rs), len(ids))
	}
	for _, r := range rs {
		if !errors.Is(r.Err, async.ErrNotSent) || !errors.Is(r.Err, errSend) {
			t.Fatalf("result err = %v; want ErrNotSent and the leftovers error", r.Err)
		}
	}
}

func TestNewPublisher_validates_config(t *testing.T) {
	rec := newRecorder()
	bad := []struct {
		name  string
		inner message.Publisher
		cfg   async.Config
	}{
		{"nil inner", nil, async.Config{}},
		{"negative core", rec, async.Config{CoreWorkers: -1}},
		{"max below core", rec, async.Config{CoreWorkers: 20, MaxWorkers: 5}},
		{"negative queue", rec, async.Config{QueueCapacity: -1}},
		{"negative keep-alive", rec, async.Config{KeepAlive: -time.Second}},
		{"negative close timeout", rec, async.Config{CloseTimeout: -time.Second}},
		{"unknown full policy", rec, async.Config{FullPolicy: 7}},
	}
	for _, tt := range bad {
		t.Run("bad/"+tt.name, func(t *testing.T) {
			if _, err := async.NewPublisher(tt.inner, tt.cfg, nil); !errors.Is(err, async.ErrInvalidConfig) {
				t.Fatalf("NewPublisher = %v; want ErrInvalidConfig", err)
			}
		})
	}
	good := []struct {
		name string
		cfg  async.Config
	}{
		{"zero value gives the seed defaults", async.Config{}},
		{"core above default max raises max", async.Config{CoreWorkers: 80}},
		{"single worker", async.Config{CoreWorkers: 1, MaxWorkers: 1, QueueCapacity: 1, FullPolicy: async.Block}},
	}
	for _, tt := range good {
		t.Run("good/"+tt.name, func(t *testing.T) {
			p, err := async.NewPublisher(rec, tt.cfg, nil)
			if err != nil {
				t.Fatalf("NewPublisher: %v", err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFullPolicy_strings(t *testing.T) {
	got := []string{async.CallerRuns.String(), async.Block.String(), async.Reject.String()}
	if diff := cmp.Diff([]string{"caller-runs", "block", "reject"}, got); diff != "" {
		t.Fatal(diff)
	}
}

func TestPublisher_close_waits_for_a_send_the_caller_runs(t *testing.T) {
	// The queue is full and the only worker busy: the caller sends "c"
	// itself. It is in flight, and a Close that starts once the worker is
	// idle still waits for it (and its report) before closing the inner
	// publisher.
	wStarted, wRelease := make(chan struct{}), make(chan struct{})
	cStarted, cRelease := make(chan struct{}), make(chan struct{})
	inner := &fakepub.Publisher{Func: func(_ string, msgs []*message.Message) error {
		switch msgs[0].UUID {
		case "w":
			close(wStarted)
			<-wRelease
		case "c":
			close(cStarted)
			<-cRelease
		}
		return nil
	}}
	res := newResults()
	pub := newPublisher(t, inner, async.Config{CoreWorkers: 1, MaxWorkers: 1, QueueCapacity: 1, Hooks: []any{res}})
	if err := pub.Publish("t", msg("w")); err != nil {
		t.Fatal(err)
	}
	<-wStarted
	if err := pub.Publish("t", msg("q")); err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() { published <- pub.Publish("t", msg("c")) }()
	<-cStarted
	if st := pub.Stats(); st.InFlight != 2 || st.Queued != 1 {
		t.Fatalf("stats = %+v; want the worker's send and the caller's in flight, 1 queued", st)
	}
	close(wRelease)
	waitFor(t, "the worker to send w and q", func() bool { return pub.Stats().Done == 2 })
	closed := make(chan error, 1)
	go func() { closed <- pub.Close() }()
	want := []string{"c", "q", "w"}
	waitFor(t, "Close to refuse new calls", func() bool {
		id := watermill.NewUUID()
		err := pub.Publish("t", msg(id))
		if err == nil {
			want = append(want, id) // queued before Close started: sent too
		}
		return errors.Is(err, async.ErrClosed)
	})
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while the caller's send was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	if inner.Closed() {
		t.Fatal("inner publisher closed under a send in flight")
	}
	close(cRelease)
	if err := <-published; err != nil {
		t.Fatalf("Publish = %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if st := pub.Stats(); st.CallerRan != 1 || st.Done != int64(len(want)) || st.InFlight != 0 {
		t.Fatalf("stats = %+v; want 1 caller-ran, %d done, nothing in flight", st, len(want))
	}
	if diff := cmp.Diff(sorted(want), sorted(inner.UUIDs())); diff != "" {
		t.Fatalf("sent (-want +got):\n%s", diff)
	}
	if n := len(res.get()); n != len(want) {
		t.Fatalf("%d results; want %d", n, len(want))
	}
}
