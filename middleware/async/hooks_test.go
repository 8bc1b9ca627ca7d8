package async_test

import (
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
)

// orderHook notes, under one lock shared by several hooks, which hook saw
// which message.
type orderHook struct {
	name string
	mu   *sync.Mutex
	seen *[]string
}

func (h orderHook) OnAsyncResult(r async.Result) {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.seen = append(*h.seen, h.name+":"+r.Messages[0].UUID)
}

func TestPublisher_runs_every_result_hook_in_the_order_of_Config_Hooks(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	inner := &fakepub.Publisher{}
	pub := newPublisher(t, inner, async.Config{CoreWorkers: 1, MaxWorkers: 1, Hooks: []any{
		orderHook{"first", &mu, &seen}, orderHook{"second", &mu, &seen},
	}})
	for _, id := range []string{"a", "b"} {
		if err := pub.Publish("t", msg(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	// One worker sends a, then b; each result goes to both hooks in turn.
	want := []string{"first:a", "second:a", "first:b", "second:b"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Fatalf("hook calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b"}, inner.UUIDs()); diff != "" {
		t.Fatalf("sent (-want +got):\n%s", diff)
	}
}
