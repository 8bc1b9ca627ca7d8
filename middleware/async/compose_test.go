package async_test

import (
	"context"
	"testing"
	"time"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/policy"
)

func TestPublisher_over_retry_reports_the_outcome_after_the_retries(t *testing.T) {
	clk := clocktest.NewFake(time.Time{})
	inner := &fakepub.Publisher{Script: []error{errSend, errSend}} // then succeeds
	rp, err := retry.NewPublisher(inner, retry.Config{Policy: policy.Policy{MaxAttempts: 5, Backoff: policy.Fixed(time.Second)}, Clock: clk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := newResults()
	pub := newPublisher(t, rp, async.Config{Hooks: []any{res}, Clock: clk})
	defer pub.Close()

	if err := pub.Publish("t", msg("m")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		if err := clk.BlockUntil(ctx, 1); err != nil {
			t.Fatalf("retry %d never waited: %v", i+1, err)
		}
		clk.Advance(time.Second)
	}
	r := res.next(t)
	if r.Err != nil || inner.Calls() != 3 {
		t.Fatalf("result %+v after %d calls; want success after 3", r, inner.Calls())
	}
}

func TestPublisher_close_cuts_a_long_retry_short_and_hands_the_message_over(t *testing.T) {
	// A broker that stays down: the retry layer would wait hours. Close must
	// not: at its timeout the send is cancelled and the message goes to the
	// leftovers publisher (the fallback store), not lost.
	clk := clocktest.NewFake(time.Time{})
	inner := &fakepub.Publisher{Err: errSend} // a broker that stays down
	rp, err := retry.NewPublisher(inner, retry.Config{Policy: policy.RocketMQ(), Clock: clk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	left := newRecorder()
	close(left.release)
	res := newResults()
	pub := newPublisher(t, rp, async.Config{Hooks: []any{res}, Clock: clk, CloseTimeout: 5 * time.Second, Leftovers: left})

	if err := pub.Publish("t", msg("m")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clk.BlockUntil(ctx, 1); err != nil { // the retry's 10s wait
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- pub.Close() }()
	if err := clk.BlockUntil(ctx, 2); err != nil { // plus Close's 5s timeout
		t.Fatal(err)
	}
	clk.Advance(5 * time.Second)
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return at its timeout")
	}
	r := res.next(t)
	if !r.Leftover || r.Err != nil {
		t.Fatalf("result = %+v; want a leftover handed over", r)
	}
	if got := left.Sent(); len(got) != 1 || got[0] != "m" {
		t.Fatalf("leftovers = %v; want [m]", got)
	}
	if inner.Calls() != 1 {
		t.Fatalf("inner called %d times; want 1 (the retry wait was cut short)", inner.Calls())
	}
	if st := pub.Stats(); st.Leftover != 1 || st.Failed != 0 {
		t.Fatalf("stats = %+v", st)
	}
}
