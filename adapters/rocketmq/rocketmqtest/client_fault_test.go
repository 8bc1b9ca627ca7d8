//go:build !race

package rocketmqtest_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

func TestBroker_restart_on_the_same_port_keeps_messages_and_offsets_and_loses_nothing(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic, group := uniqueName("t"), uniqueName("g")
	addr := b.NameServerAddr()

	sent := map[string]bool{}
	send := func(i int) {
		res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(strconv.Itoa(i))))
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		sent[res.MsgID] = true
	}
	for i := 0; i < 10; i++ {
		send(i)
	}
	col := newCollector()
	startConsumer(t, b, consumerOpts{group: group, topic: topic, handler: collectInto(col)})
	waitFor(t, 10*time.Second, "the first 10", func() bool { return len(col.distinct()) == 10 })
	waitFor(t, 10*time.Second, "committed offsets", func() bool {
		var s int64
		for _, v := range b.ConsumerOffsets(group, topic) {
			s += v
		}
		return s == 10
	})
	before := b.ConsumerOffsets(group, topic)

	if err := b.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := b.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if b.NameServerAddr() != addr {
		t.Fatalf("restarted on %s, want %s", b.NameServerAddr(), addr)
	}
	if n := len(b.Messages(topic)); n != 10 {
		t.Fatalf("%d messages after restart, want 10", n)
	}
	after := b.ConsumerOffsets(group, topic)
	for q, off := range before {
		if after[q] < off {
			t.Errorf("queue %d offset went back from %d to %d", q, off, after[q])
		}
	}
	for i := 10; i < 20; i++ {
		send(i)
	}
	waitFor(t, 15*time.Second, "all 20 after the restart", func() bool {
		got := col.distinct()
		for id := range sent {
			if got[id] == nil {
				return false
			}
		}
		return true
	})
}

func TestBroker_fault_system_error_on_send_is_retried_by_the_client(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")
	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemError, 2)
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("x"))); err != nil {
		t.Fatalf("send after 2 injected SYSTEM_ERRORs: %v", err)
	}
	if n := len(b.Messages(topic)); n != 1 {
		t.Errorf("stored %d messages, want 1", n)
	}
}

func TestBroker_fault_system_busy_on_send_fails_sync_send_at_once(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")
	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemBusy, 1)
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("x"))); err == nil {
		t.Fatal("SendSync succeeded through SYSTEM_BUSY; the v2.1.2 client does not retry it")
	}
	if n := len(b.Messages(topic)); n != 0 {
		t.Errorf("stored %d messages, want 0", n)
	}
	// The fault was for one request only.
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("y"))); err != nil {
		t.Fatalf("second send: %v", err)
	}
}

func TestBroker_fault_until_cleared_fails_every_attempt(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")
	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespServiceNotAvailable, -1)
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("x"))); err == nil {
		t.Fatal("send succeeded while every attempt fails")
	}
	b.ClearFaults()
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("y"))); err != nil {
		t.Fatalf("send after ClearFaults: %v", err)
	}
	if n := len(b.Messages(topic)); n != 1 {
		t.Errorf("stored %d messages, want 1", n)
	}
}

func TestBroker_fault_random_failures_are_absorbed_by_client_retries(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("create"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	b.FailRandomly(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemError, 0.3)
	const n = 50
	var failed int
	for i := 0; i < n; i++ {
		if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte(strconv.Itoa(i)))); err != nil {
			failed++
		}
	}
	// With 4 attempts, a send fails with probability 0.3^4 < 1%.
	if failed > 3 {
		t.Errorf("%d of %d sends failed through 30%% random SYSTEM_ERRORs", failed, n)
	}
	if got := len(b.Messages(topic)) - 1; got != n-failed {
		t.Errorf("broker stored %d, want %d (no duplicates, no losses)", got, n-failed)
	}
}

func TestBroker_fault_latency_delays_the_answer(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("create"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	b.SetLatency(rocketmqtest.CodeSendMessage, 300*time.Millisecond)
	start := time.Now()
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("slow"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("send answered after %v, before the injected 300ms", took)
	}
}

func TestBroker_fault_silence_makes_the_client_time_out(t *testing.T) {
	if testing.Short() {
		t.Skip("the client's send timeout is a fixed 3 s")
	}
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("create"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	b.Silence(rocketmqtest.CodeSendMessage, true)
	done := make(chan error, 1)
	if err := p.SendAsync(context.Background(), func(_ context.Context, _ *primitive.SendResult, err error) {
		done <- err
	}, primitive.NewMessage(topic, []byte("lost"))); err != nil {
		t.Fatalf("send async: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("async send succeeded against a silent broker")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no callback 10 s after an async send to a silent broker")
	}
	b.Silence(rocketmqtest.CodeSendMessage, false)
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("back"))); err != nil {
		t.Fatalf("send after silence ended: %v", err)
	}
}

func TestBroker_fault_dropped_connections_are_reopened_by_the_producer(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic := uniqueName("t")
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("before"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	b.DropConnections()
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("after"))); err != nil {
		t.Fatalf("send after dropped connections: %v", err)
	}
	if n := len(b.Messages(topic)); n != 2 {
		t.Errorf("stored %d messages, want 2", n)
	}
}

func TestBroker_fault_failed_send_back_loses_the_retry_as_the_client_ignores_it(t *testing.T) {
	// The v2.1.2 client treats any answer to CONSUMER_SEND_MSG_BACK as
	// success, so a broker error there drops the message: this is what
	// an adapter must guard against.
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DelayScale: 0.001})
	p := newProducer(t, b)
	topic, group := uniqueName("t"), uniqueName("g")
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("x"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	b.Fail(rocketmqtest.CodeConsumerSendMsgBack, rocketmqtest.RespSystemError, -1)
	var calls atomic.Int32
	startConsumer(t, b, consumerOpts{group: group, topic: topic, handler: func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		calls.Add(1)
		return consumer.ConsumeRetryLater, nil
	}})
	waitFor(t, 10*time.Second, "the first delivery", func() bool { return calls.Load() >= 1 })
	waitFor(t, 10*time.Second, "the offset to move past the message", func() bool {
		var s int64
		for _, v := range b.ConsumerOffsets(group, topic) {
			s += v
		}
		return s == 1
	})
	if n := len(b.Messages("%RETRY%" + group)); n != 0 {
		t.Errorf("retry topic has %d messages, want 0", n)
	}
	if c := calls.Load(); c != 1 {
		t.Errorf("handler ran %d times, want 1", c)
	}
}

func TestBroker_loses_no_acknowledged_message_when_restarted_under_load(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	p := newProducer(t, b)
	topic, group := uniqueName("t"), uniqueName("g")
	if _, err := p.SendSync(context.Background(), primitive.NewMessage(topic, []byte("create"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	col := newCollector()
	startConsumer(t, b, consumerOpts{group: group, topic: topic, handler: collectInto(col)})

	acked := map[string]bool{}
	var failed int
	stop := time.After(1500 * time.Millisecond)
	restarted := false
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case <-stop:
		default:
			if !restarted && time.Since(start) > 500*time.Millisecond {
				if err := b.Stop(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
				if err := b.Restart(); err != nil {
					t.Fatal(err)
				}
				restarted = true
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(strconv.Itoa(i))))
			cancel()
			if err != nil {
				failed++
			} else {
				acked[res.MsgID] = true
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		break
	}
	var lost int
	waitFor(t, 20*time.Second, "every acknowledged message", func() bool {
		got := col.distinct()
		lost = 0
		for id := range acked {
			if got[id] == nil {
				lost++
			}
		}
		return lost == 0
	})
	delivered := 0
	for _, m := range col.snapshot() {
		if acked[m.MsgId] {
			delivered++
		}
	}
	t.Logf("acknowledged %d, failed %d, lost %d, duplicate deliveries %d", len(acked), failed, lost, delivered-len(acked))
	if len(acked) == 0 {
		t.Fatal("no send succeeded")
	}
}
