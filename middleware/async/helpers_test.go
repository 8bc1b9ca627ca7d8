package async_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errSend = errors.New("send failed")

// recorder is the inner publisher of most tests: a fakepub.Publisher whose
// Func gives two metadata keys a meaning. A message with "block" announces
// its UUID on started and waits until release is closed or its context ends;
// a message with "fail" fails with errSend.
type recorder struct {
	*fakepub.Publisher
	started chan string // receives the UUID of every blocking send as it starts
	release chan struct{}
}

func newRecorder() *recorder {
	r := &recorder{started: make(chan string, 1000), release: make(chan struct{})}
	r.Publisher = &fakepub.Publisher{Func: func(_ string, msgs []*message.Message) error {
		for _, m := range msgs {
			if m.Metadata.Get("block") != "" {
				r.started <- m.UUID
				select {
				case <-r.release:
				case <-m.Context().Done():
					return context.Cause(m.Context())
				}
			}
			if m.Metadata.Get("fail") != "" {
				return errSend
			}
		}
		return nil
	}}
	return r
}

// Sent returns the UUIDs the recorder accepted, in order.
func (r *recorder) Sent() []string { return r.UUIDs() }

// results is a ResultHook that collects every Result.
type results struct {
	mu  sync.Mutex
	all []async.Result
	ch  chan async.Result
}

func newResults() *results { return &results{ch: make(chan async.Result, 100000)} }

func (r *results) OnAsyncResult(res async.Result) {
	r.mu.Lock()
	r.all = append(r.all, res)
	r.mu.Unlock()
	r.ch <- res
}

func (r *results) get() []async.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]async.Result(nil), r.all...)
}

// next waits for the next result.
func (r *results) next(t *testing.T) async.Result {
	t.Helper()
	select {
	case res := <-r.ch:
		return res
	case <-time.After(10 * time.Second):
		t.Fatal("no result within 10s")
		return async.Result{}
	}
}

func msg(id string, meta ...string) *message.Message {
	m := message.NewMessage(id, []byte("payload"))
	for i := 0; i+1 < len(meta); i += 2 {
		m.Metadata.Set(meta[i], meta[i+1])
	}
	return m
}

func newPublisher(t *testing.T, inner message.Publisher, cfg async.Config) *async.Publisher {
	t.Helper()
	p, err := async.NewPublisher(inner, cfg, nil)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	return p
}

// waitFor polls cond until it holds; the pool's state changes on other
// goroutines and has no event to wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitStarted(t *testing.T, r *recorder, want string) {
	t.Helper()
	select {
	case got := <-r.started:
		if got != want {
			t.Fatalf("send of %s started; want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("send of %s never started", want)
	}
}

// resultFunc is a ResultHook made of a function.
type resultFunc func(async.Result)

func (f resultFunc) OnAsyncResult(r async.Result) { f(r) }
