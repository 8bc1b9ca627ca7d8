//go:build !race

package rocketmqtest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

// A broker on a free port, a real producer pointed at it, and the stored
// message read back through inspection.
func Example() {
	b, err := rocketmqtest.New(rocketmqtest.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	p, _ := rocketmq.NewProducer(
		producer.WithNameServer([]string{b.NameServerAddr()}),
		producer.WithInstanceName("example-producer"),
	)
	if err := p.Start(); err != nil {
		panic(err)
	}
	defer p.Shutdown()

	msg := primitive.NewMessage("example-topic", []byte("hello"))
	msg.WithTag("greeting")
	res, err := p.SendSync(context.Background(), msg)
	fmt.Println(res.Status == primitive.SendOK, err)

	stored := b.Messages("example-topic")
	fmt.Println(len(stored), string(stored[0].Body), stored[0].Tags, stored[0].MsgID == res.MsgID)
	// Output:
	// true <nil>
	// 1 hello greeting true
}

// Fault injection: the v2.1.2 producer does not retry SYSTEM_BUSY, so one
// injected failure fails the send; SYSTEM_ERROR is retried.
func ExampleBroker_Fail() {
	b, _ := rocketmqtest.New(rocketmqtest.Config{})
	defer b.Close()
	p, _ := rocketmq.NewProducer(
		producer.WithNameServer([]string{b.NameServerAddr()}),
		producer.WithInstanceName("example-fail"),
	)
	_ = p.Start()
	defer p.Shutdown()
	ctx := context.Background()

	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemBusy, 1)
	_, err := p.SendSync(ctx, primitive.NewMessage("example-faults", []byte("a")))
	fmt.Println("busy:", err != nil)

	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemError, 2)
	_, err = p.SendSync(ctx, primitive.NewMessage("example-faults", []byte("b")))
	fmt.Println("error, retried:", err)
	fmt.Println("stored:", len(b.Messages("example-faults")))
	// Output:
	// busy: true
	// error, retried: <nil>
	// stored: 1
}

// Delay levels scaled for a test: level 3 (10 s) becomes 10 ms.
func ExampleConfig_delayScale() {
	b, _ := rocketmqtest.New(rocketmqtest.Config{DelayScale: 0.001})
	defer b.Close()
	p, _ := rocketmq.NewProducer(
		producer.WithNameServer([]string{b.NameServerAddr()}),
		producer.WithInstanceName("example-delay"),
	)
	_ = p.Start()
	defer p.Shutdown()

	msg := primitive.NewMessage("example-delay", []byte("later"))
	msg.WithDelayTimeLevel(3)
	_, _ = p.SendSync(context.Background(), msg)
	fmt.Println("waiting:", b.PendingDelayed(), "visible:", len(b.Messages("example-delay")))
	for b.PendingDelayed() > 0 {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("waiting:", b.PendingDelayed(), "visible:", len(b.Messages("example-delay")))
	// Output:
	// waiting: 1 visible: 0
	// waiting: 0 visible: 1
}
