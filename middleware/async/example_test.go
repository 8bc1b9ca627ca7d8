package async_test

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/middleware/async"
)

// outcomeLog is a ResultHook: it notes the outcome of every call the pool
// took. Hooks run on the workers, so it locks.
type outcomeLog struct {
	mu       sync.Mutex
	outcomes []string
}

func (l *outcomeLog) OnAsyncResult(r async.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes = append(l.outcomes, fmt.Sprintf("%s sent, err=%v", r.Messages[0].UUID, r.Err))
}

func (l *outcomeLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.outcomes...)
}

func ExampleNewPublisher() {
	broker := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 10}, watermill.NopLogger{})
	delivered, _ := broker.Subscribe(context.Background(), "orders")

	log := &outcomeLog{}
	pub, err := async.NewPublisher(broker, async.Config{
		// The seed's pool: 10 core workers, 50 max, 200 queued, caller-runs.
		Hooks: []any{log},
	}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}

	// An HTTP handler would publish with its request context and return at
	// once; the send outlives the request.
	ctx, cancel := context.WithCancel(context.Background())
	for _, id := range []string{"order-1", "order-2"} {
		m := message.NewMessage(id, []byte(`{}`))
		m.SetContext(ctx)
		if err := pub.Publish("orders", m); err != nil {
			fmt.Println("refused:", err)
		}
	}
	cancel()

	for range 2 {
		(<-delivered).Ack()
	}
	// Close waits for the pool (and closes the broker publisher).
	if err := pub.Close(); err != nil {
		fmt.Println("close:", err)
	}
	outcomes := log.get()
	sort.Strings(outcomes)
	for _, o := range outcomes {
		fmt.Println(o)
	}
	fmt.Printf("%+v\n", pub.Stats())
	// Output:
	// order-1 sent, err=<nil>
	// order-2 sent, err=<nil>
	// {Queued:0 InFlight:0 Workers:0 Done:2 Failed:0 Rejected:0 CallerRan:0 Leftover:0 Capacity:200 MaxWorkers:50}
}
