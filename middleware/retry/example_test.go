package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/policy"
)

// failingFirst fails its first two publishes, as a broker that is restarting.
type failingFirst struct {
	message.Publisher
	failures int
}

func (f *failingFirst) Publish(topic string, msgs ...*message.Message) error {
	if f.failures > 0 {
		f.failures--
		return errors.New("broker unavailable")
	}
	return f.Publisher.Publish(topic, msgs...)
}

// printRetries is a RetryHook: it sees each failed attempt that will be
// retried, with the delay about to be waited.
type printRetries struct{}

func (printRetries) OnPublishRetry(p retry.Params) {
	fmt.Printf("attempt %d failed (%v), retrying in %v\n", p.Attempt, p.Err, p.Delay)
}

func ExampleNewPublisher() {
	broker := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1}, watermill.NopLogger{})
	delivered, _ := broker.Subscribe(context.Background(), "orders")

	pub, err := retry.NewPublisher(&failingFirst{Publisher: broker, failures: 2}, retry.Config{
		// Spring-style: 3 attempts, 10ms then 20ms between them.
		Policy: policy.Policy{MaxAttempts: 3, Backoff: policy.Exponential(10*time.Millisecond, 2, 0)},
		Hooks:  []any{printRetries{}},
	}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	defer pub.Close()

	if err := pub.Publish("orders", message.NewMessage("order-1", []byte(`{"id":1}`))); err != nil {
		fmt.Println("publish failed:", err)
		return
	}
	msg := <-delivered
	msg.Ack()
	fmt.Println("delivered", msg.UUID)
	// Output:
	// attempt 1 failed (broker unavailable), retrying in 10ms
	// attempt 2 failed (broker unavailable), retrying in 20ms
	// delivered order-1
}
