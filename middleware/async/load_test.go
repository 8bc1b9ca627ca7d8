package async_test

import (
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
)

// ledger counts, per message, every way a message can end as the test sees
// it: reported to the ResultHook (sent, failed or leftover) or refused by
// Publish. What the inner and Leftovers publishers accepted they count
// themselves (fakepub.Publisher.Count).
type ledger struct {
	resultOK   []atomic.Int32
	resultFail []atomic.Int32
	leftover   []atomic.Int32
	refused    []atomic.Int32
}

func newLedger(n int) *ledger {
	return &ledger{
		resultOK: make([]atomic.Int32, n), resultFail: make([]atomic.Int32, n),
		leftover: make([]atomic.Int32, n), refused: make([]atomic.Int32, n),
	}
}

func idx(m *message.Message) int {
	i, err := strconv.Atoi(m.UUID)
	if err != nil {
		panic(err) // test messages only
	}
	return i
}

// slowInner takes a little scheduling time per call and fails every 10th
// message.
func slowInner() *fakepub.Publisher {
	return &fakepub.Publisher{Func: func(_ string, msgs []*message.Message) error {
		for range 3 {
			runtime.Gosched()
		}
		for _, m := range msgs {
			if idx(m)%10 == 7 {
				return errSend
			}
		}
		return nil
	}}
}

// runLoad publishes total messages from 64 goroutines, calling Close after
// closeAfter messages were published (or at the end when closeAfter < 0), and
// checks that every message is accounted for exactly once.
func runLoad(t *testing.T, full async.FullPolicy, total, closeAfter int, closeTimeout time.Duration) async.Stats {
	t.Helper()
	const producers = 64
	l := newLedger(total)
	inner, store := slowInner(), &fakepub.Publisher{}
	pub, err := async.NewPublisher(inner, async.Config{
		CoreWorkers: 2, MaxWorkers: 4, QueueCapacity: 4, FullPolicy: full,
		CloseTimeout: closeTimeout, Leftovers: store,
		Hooks: []any{resultFunc(func(r async.Result) {
			for _, m := range r.Messages {
				i := idx(m)
				switch {
				case r.Leftover:
					l.leftover[i].Add(1)
				case r.Err != nil:
					l.resultFail[i].Add(1)
				default:
					l.resultOK[i].Add(1)
				}
			}
		})},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}

	var published atomic.Int64
	closed := make(chan error, 1)
	var closeOnce sync.Once
	var wg sync.WaitGroup
	var unexpected atomic.Value
	for g := 0; g < producers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < total; i += producers {
				m := message.NewMessage(strconv.Itoa(i), nil)
				err := pub.Publish("load", m)
				switch {
				case err == nil:
				case errors.Is(err, async.ErrQueueFull), errors.Is(err, async.ErrClosed):
					l.refused[i].Add(1)
				case errors.Is(err, errSend):
					// A caller-run send failed: it is also reported to the ResultHook.
				default:
					unexpected.Store(err)
				}
				if closeAfter >= 0 && published.Add(1) == int64(closeAfter) {
					closeOnce.Do(func() { go func() { closed <- pub.Close() }() })
				}
			}
		}()
	}
	wg.Wait()
	if closeAfter < 0 {
		closed <- pub.Close()
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := unexpected.Load(); err != nil {
		t.Fatalf("unexpected Publish error: %v", err)
	}

	innerSent, stored := inner.Count(), store.Count()
	var sent, failed, refused, left int
	for i := 0; i < total; i++ {
		id := strconv.Itoa(i)
		ok, fail, lo, ref := l.resultOK[i].Load(), l.resultFail[i].Load(), l.leftover[i].Load(), l.refused[i].Load()
		st, in := int32(stored[id]), int32(innerSent[id])
		if n := ok + fail + lo + ref; n != 1 {
			t.Fatalf("message %d has %d outcomes (ok %d, failed %d, leftover %d, refused %d); want exactly 1", i, n, ok, fail, lo, ref)
		}
		if in > 1 || (ok == 1) != (in == 1) {
			t.Fatalf("message %d: sent by inner %d times, reported sent %d times", i, in, ok)
		}
		if lo != st {
			t.Fatalf("message %d: reported leftover %d times, stored %d times", i, lo, st)
		}
		if fail == 1 && i%10 != 7 {
			t.Fatalf("message %d reported failed but the inner publisher never failed it", i)
		}
		sent += int(ok)
		failed += int(fail)
		refused += int(ref)
		left += int(lo)
	}
	st := pub.Stats()
	t.Logf("%v: sent %d, failed %d, refused %d, leftover %d; stats %+v", full, sent, failed, refused, left, st)
	if int(st.Done) != sent || int(st.Failed) != failed || int(st.Rejected) != refused || int(st.Leftover) != left {
		t.Fatalf("stats %+v disagree with the ledger (sent %d, failed %d, refused %d, leftover %d)", st, sent, failed, refused, left)
	}
	if st.Workers != 0 || st.InFlight != 0 || st.Queued != 0 {
		t.Fatalf("stats after Close = %+v; want no workers, nothing in flight or queued", st)
	}
	return st
}

// loadSize is the same in the race detector pass: the full load runs there
// in a few seconds.
func loadSize() int { return 100_000 }

func TestPublisher_under_load_accounts_for_every_message_exactly_once(t *testing.T) {
	for _, full := range []async.FullPolicy{async.CallerRuns, async.Block, async.Reject} {
		t.Run(full.String(), func(t *testing.T) {
			st := runLoad(t, full, loadSize(), -1, time.Minute)
			switch full {
			case async.CallerRuns:
				if st.Rejected != 0 {
					t.Fatalf("caller-runs rejected %d calls", st.Rejected)
				}
			case async.Block:
				if st.Rejected != 0 || st.CallerRan != 0 {
					t.Fatalf("block rejected %d and caller-ran %d calls", st.Rejected, st.CallerRan)
				}
			case async.Reject:
				if st.CallerRan != 0 {
					t.Fatalf("reject caller-ran %d calls", st.CallerRan)
				}
			}
		})
	}
}

func TestPublisher_close_under_load_loses_and_duplicates_nothing(t *testing.T) {
	for _, full := range []async.FullPolicy{async.CallerRuns, async.Block, async.Reject} {
		t.Run(full.String(), func(t *testing.T) {
			// Close starts half-way through with a tiny timeout, so some
			// calls are refused, some are left over, most are sent.
			runLoad(t, full, loadSize(), loadSize()/2, time.Millisecond)
		})
	}
}
