package async_test

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
)

// TestPublisher_publish_racing_close_is_either_taken_or_refused starts Close
// while producers publish, many times over, and checks every call: a Publish
// that returned nil is reported exactly once to the ResultHook (sent, or handed to
// Leftovers), one that returned ErrClosed never. Nothing is lost, nothing
// panics on the closed queue.
func TestPublisher_publish_racing_close_is_either_taken_or_refused(t *testing.T) {
	const rounds, producers, perProducer = 300, 8, 25
	for _, full := range []async.FullPolicy{async.CallerRuns, async.Block, async.Reject} {
		t.Run(full.String(), func(t *testing.T) {
			for round := range rounds {
				const n = producers * perProducer
				reported := make([]atomic.Int32, n)
				refused := make([]atomic.Int32, n)
				onResult := func(r async.Result) {
					for _, m := range r.Messages {
						reported[idx(m)].Add(1)
					}
				}
				left := newRecorder()
				close(left.release)
				pub := newPublisher(t, &fakepub.Publisher{}, async.Config{
					CoreWorkers: 1, MaxWorkers: 2, QueueCapacity: 2, FullPolicy: full,
					Leftovers: left, Hooks: []any{resultFunc(onResult)},
				})
				var wg sync.WaitGroup
				start := make(chan struct{})
				var published atomic.Int32
				closeAt := int32(round % n) // a different moment each round
				closed := make(chan error, 1)
				for g := range producers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						for i := g * perProducer; i < (g+1)*perProducer; i++ {
							err := pub.Publish("t", message.NewMessage(strconv.Itoa(i), nil))
							switch {
							case err == nil:
							case errors.Is(err, async.ErrClosed), errors.Is(err, async.ErrQueueFull):
								refused[i].Add(1)
							default:
								t.Errorf("round %d: Publish = %v", round, err)
							}
							if published.Add(1) == closeAt+1 {
								go func() { closed <- pub.Close() }()
							}
						}
					}()
				}
				close(start)
				wg.Wait()
				if err := <-closed; err != nil {
					t.Fatalf("round %d: Close = %v", round, err)
				}
				for i := range n {
					if got := reported[i].Load() + refused[i].Load(); got != 1 {
						t.Fatalf("round %d: message %d reported %d times and refused %d times; want exactly one of them",
							round, i, reported[i].Load(), refused[i].Load())
					}
				}
			}
		})
	}
}
