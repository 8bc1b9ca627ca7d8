// Command router shows where the redelivery middleware goes in a Watermill
// Router next to Watermill's own middleware (correlation id, recoverer,
// timeout), on gochannel so it needs nothing but Go:
//
//	router.AddMiddleware(middleware.CorrelationID, middleware.Recoverer) // outermost, every handler
//	rd.AddHandler(router, ...)                                          // redelivery wraps the handler
//	handler.AddMiddleware(middleware.Timeout(...))                      // innermost, per attempt
//
// Watermill runs middleware in the order it was added, router-level and
// handler-level alike, the first added outermost. So:
//
//   - CorrelationID outside redelivery: the handler's output messages get the
//     correlation id of the message being handled, first delivery or retry
//     (redelivery keeps all metadata on a retried message).
//   - Recoverer outside redelivery: redelivery recovers handler panics itself
//     (retried, dead-lettered with the stack in metadata.PanicStack); the
//     Recoverer only catches panics in the middleware around it. Inside
//     redelivery it would turn a panic into an ordinary error first, and the
//     dead letter would lose its stack.
//   - Timeout inside redelivery: each attempt gets its own deadline, and a
//     timed-out attempt is an ordinary failure, retried on the schedule.
//   - Do not add Watermill's Retry or PoisonQueue middleware to the same
//     handler: redelivery replaces both (Retry sleeps in the handler and
//     stalls the subscription; redelivery schedules and acknowledges at once).
//
// The run prints every attempt and exits with status 0 when every order ended
// as expected.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

const (
	topicOrders  = "orders"
	topicCharges = "charges"
	group        = "billing"
)

// Result is what happened to each order, by message UUID.
type Result struct {
	// Charged maps an order's UUID to the correlation id on its charge event.
	Charged map[string]string
	// DeadLettered maps an order's UUID to its dead-letter reason.
	DeadLettered map[string]string
	// PanicStack is true when the panicking order's dead letter carries the stack.
	PanicStack bool
	// Attempts counts handler runs per order UUID.
	Attempts map[string]int
	// Orders maps each order's name to its UUID, and Correlation to its
	// correlation id.
	Orders, Correlation map[string]string
}

// scaledRocketMQ is RocketMQ's consumer schedule (10s 30s 1m ...) divided
// by 100, so the example runs in about a second.
var scaledRocketMQ = policy.BackoffFunc(func(n int) time.Duration { return policy.RocketMQ().Delay(n) / 100 })

func main() {
	res, err := Run(context.Background(), os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
	if err := res.Check(); err != nil {
		fmt.Fprintln(os.Stderr, "router:", err)
		os.Exit(1)
	}
}

// Check compares the result with what the example promises.
func (r Result) Check() error {
	var errs []error
	for _, name := range []string{"ok", "declined-twice"} {
		id := r.Orders[name]
		if got := r.Charged[id]; got != r.Correlation[name] {
			errs = append(errs, fmt.Errorf("order %s: charge carries correlation id %q, want %q", name, got, r.Correlation[name]))
		}
	}
	if got := r.DeadLettered[r.Orders["panics"]]; got != redelivery.ReasonMaxAttempts {
		errs = append(errs, fmt.Errorf("order panics: dead-letter reason %q, want %s", got, redelivery.ReasonMaxAttempts))
	}
	if got := r.DeadLettered[r.Orders["invalid"]]; got != redelivery.ReasonPermanent {
		errs = append(errs, fmt.Errorf("order invalid: dead-letter reason %q, want %s", got, redelivery.ReasonPermanent))
	}
	if !r.PanicStack {
		errs = append(errs, errors.New("the panicking order's dead letter has no stack"))
	}
	return errors.Join(errs...)
}

// Run starts the router, publishes four orders and waits until each one is
// charged or dead-lettered.
func Run(ctx context.Context, out io.Writer) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "[%4dms] %s\n", time.Since(start).Milliseconds(), fmt.Sprintf(format, args...))
	}
	res := Result{Charged: map[string]string{}, DeadLettered: map[string]string{}, Attempts: map[string]int{},
		Orders: map[string]string{}, Correlation: map[string]string{}}
	settled := make(chan struct{}, 8)

	logger := watermill.NopLogger{}
	// Serial hand-off, as a broker consumer has per queue.
	pubSub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
	defer pubSub.Close()

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, logger)
	if err != nil {
		return res, err
	}
	// 1. Router-level middleware, added first: outermost for every handler.
	router.AddMiddleware(middleware.CorrelationID, middleware.Recoverer)

	// 2. Redelivery, handler-level, added by AddHandler: it sees the handler's
	// result (after the Timeout below) and schedules, retries, dead-letters.
	rd, err := redelivery.New(redelivery.Config{
		ConsumerGroup: group,
		Handler:       "charge_order",
		Policy:        policy.Policy{MaxAttempts: 4, Backoff: scaledRocketMQ},
		Scheduler:     redelivery.NewInMemory(redelivery.InMemoryConfig{}), // pending retries live in this process: an explicit choice
		Publisher:     pubSub,
	}, logger)
	if err != nil {
		return res, err
	}
	defer rd.Close()

	charge := func(msg *message.Message) ([]*message.Message, error) {
		order := string(msg.Payload)
		mu.Lock()
		res.Attempts[msg.UUID]++
		mu.Unlock()
		say("charge_order  %-14s reconsume %s  correlation %s", order, msg.Metadata.Get(metadata.ReconsumeTimes),
			middleware.MessageCorrelationID(msg))
		reconsume := msg.Metadata.Get(metadata.ReconsumeTimes)
		switch order {
		case "declined-twice":
			if reconsume == "0" || reconsume == "1" {
				return nil, errors.New("card declined")
			}
		case "panics":
			panic("nil pointer in the payment client")
		case "invalid":
			// Retrying cannot fix a bad order: straight to the dead-letter topic.
			return nil, policy.Permanent(errors.New("order has no amount"))
		}
		// No correlation id set here: the CorrelationID middleware copies it.
		return []*message.Message{message.NewMessage(watermill.NewUUID(), []byte(msg.UUID))}, nil
	}
	handlers, err := rd.AddHandler(router, redelivery.HandlerRegistration{
		Topic: topicOrders, Subscriber: pubSub, HandlerFunc: charge,
		PublishTopic: topicCharges, Publisher: pubSub,
	})
	if err != nil {
		return res, err
	}
	// 3. Per-attempt timeout, added after redelivery: innermost.
	for _, h := range handlers {
		h.AddMiddleware(middleware.Timeout(time.Second))
	}

	router.AddConsumerHandler("audit_charges", topicCharges, pubSub, func(msg *message.Message) error {
		orderUUID := string(msg.Payload)
		mu.Lock()
		res.Charged[orderUUID] = middleware.MessageCorrelationID(msg)
		mu.Unlock()
		say("audit_charges charge for %s  correlation %s", orderUUID[:8], middleware.MessageCorrelationID(msg))
		settled <- struct{}{}
		return nil
	})
	router.AddConsumerHandler("dlq_audit", rd.Config().DeadLetterTopic, pubSub, func(msg *message.Message) error {
		reason := msg.Metadata.Get(metadata.DeadLetterReason)
		mu.Lock()
		res.DeadLettered[msg.UUID] = reason
		if msg.Metadata.Get(metadata.PanicStack) != "" {
			res.PanicStack = true
		}
		mu.Unlock()
		say("dlq_audit     %s in %s: reason %s, attempts %s, correlation %s, last error %q",
			msg.UUID[:8], rd.Config().DeadLetterTopic, reason, msg.Metadata.Get(metadata.Attempts),
			middleware.MessageCorrelationID(msg), firstLine(msg.Metadata.Get(metadata.LastError)))
		settled <- struct{}{}
		return nil
	})

	runDone := make(chan error, 1)
	go func() { runDone <- router.Run(context.Background()) }()
	defer func() {
		_ = router.Close()
		<-runDone
	}()
	select {
	case <-router.Running():
	case err := <-runDone:
		return res, err
	}
	fmt.Fprintf(out, "middleware chain: CorrelationID > Recoverer > redelivery(in-memory, %s) > Timeout(1s) > handler\n",
		strings.Join(durs(rd.Config().Policy.Schedule(3)), " "))

	names := []string{"ok", "declined-twice", "panics", "invalid"}
	for _, name := range names {
		msg := message.NewMessage(watermill.NewUUID(), []byte(name))
		corr := "req-" + name
		middleware.SetCorrelationID(corr, msg)
		res.Orders[name], res.Correlation[name] = msg.UUID, corr
		say("publish       %-14s uuid %s", name, msg.UUID[:8])
		if err := pubSub.Publish(topicOrders, msg); err != nil {
			return res, err
		}
	}
	for range names {
		select {
		case <-settled:
		case <-ctx.Done():
			return res, fmt.Errorf("orders not settled: %w", ctx.Err())
		}
	}
	s := rd.Stats()
	fmt.Fprintf(out, "redelivery stats: %d succeeded, %d failed, %d scheduled, %d redelivered, %d dead-lettered\n",
		s.Succeeded, s.Failed, s.Scheduled, s.Redelivered, s.DeadLettered)
	return res, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func durs(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}
