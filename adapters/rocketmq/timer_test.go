//go:build !race

package rocketmq_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// timerProbe is DefaultMarshaler recording, per UUID and reconsume count,
// whether the delivered copy went through a broker timer (TIMER_OUT_MS) or a
// delay level (REAL_TOPIC without TIMER_OUT_MS).
type timerProbe struct {
	rocketmq.DefaultMarshaler
	mu    sync.Mutex
	timer map[string]bool
	level map[string]bool
}

func newTimerProbe() *timerProbe {
	return &timerProbe{timer: map[string]bool{}, level: map[string]bool{}}
}

func (p *timerProbe) Unmarshal(ext *primitive.MessageExt) (*message.Message, error) {
	m, err := p.DefaultMarshaler.Unmarshal(ext)
	if err == nil {
		key := fmt.Sprintf("%s/%d", m.UUID, ext.ReconsumeTimes)
		p.mu.Lock()
		p.timer[key] = ext.GetProperty("TIMER_OUT_MS") != ""
		p.level[key] = ext.GetProperty("TIMER_OUT_MS") == "" && ext.GetProperty("REAL_TOPIC") != ""
		p.mu.Unlock()
	}
	return m, err
}

func (p *timerProbe) viaTimer(uuid string, reconsume int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.timer[fmt.Sprintf("%s/%d", uuid, reconsume)]
}

func (p *timerProbe) viaLevel(uuid string, reconsume int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.level[fmt.Sprintf("%s/%d", uuid, reconsume)]
}

func timerTargets(timers bool) []brokerTarget {
	if timers {
		return []brokerTarget{
			{name: "embedded", patience: 20 * time.Second, nameServers: func(t *testing.T) []string {
				return []string{newBroker(t, rocketmqtest.Config{DelayLevels: secondLevels()}).NameServerAddr()}
			}},
			{name: "RocketMQ 5.2.0", patience: 60 * time.Second, nameServers: func(t *testing.T) []string {
				return []string{servicetest.RocketMQ520.Cluster(t).NameServer}
			}},
		}
	}
	return []brokerTarget{
		{name: "embedded without timers", patience: 20 * time.Second, nameServers: func(t *testing.T) []string {
			return []string{newBroker(t, rocketmqtest.Config{DelayLevels: secondLevels(), DisableTimerMessages: true}).NameServerAddr()}
		}},
		{name: "RocketMQ 4.9.4", patience: 60 * time.Second, nameServers: func(t *testing.T) []string {
			return []string{servicetest.RocketMQ494.Cluster(t).NameServer}
		}},
	}
}

// secondLevels are the real test clusters' delay levels: level n waits n
// seconds.
func secondLevels() []time.Duration {
	levels := make([]time.Duration, 18)
	for i := range levels {
		levels[i] = time.Duration(i+1) * time.Second
	}
	return levels
}

func TestPublisher_delay_millis_waits_that_long_on_a_broker_with_timer_messages(t *testing.T) {
	for _, target := range timerTargets(true) {
		t.Run(target.name, func(t *testing.T) {
			ns := target.nameServers(t)
			probe := newTimerProbe()
			sub := newSubscriberAt(t, ns, rocketmq.SubscriberConfig{Marshaler: probe})
			topic := newTopic()
			msgs := subscribe(t, sub, topic)
			pub := newPublisherAt(t, ns, rocketmq.PublisherConfig{})
			// A message without delay first: the consumer is running.
			if err := pub.Publish(topic, message.NewMessage("warm-up", []byte("w"))); err != nil {
				t.Fatal(err)
			}
			receiveUUID(t, msgs, "warm-up", target.patience)

			m := message.NewMessage(watermill.NewUUID(), []byte("later"))
			m.Metadata.Set(metadata.DelayMillis, "2500")
			sent := time.Now()
			if err := pub.Publish(topic, m); err != nil {
				t.Fatal(err)
			}
			got := receiveUUID(t, msgs, m.UUID, target.patience)
			waited := time.Since(sent)
			t.Logf("a 2500 ms timer send arrived after %v", waited)
			if waited < 2500*time.Millisecond {
				t.Errorf("arrived after %v, before its 2.5 s delay", waited)
			}
			// The broker rounds the time up to its 1 s timer precision; a
			// delay level would be 3 s on these brokers and 5 s on stock
			// ones: the copy must come from the timer wheel.
			if !probe.viaTimer(got.UUID, 0) {
				t.Errorf("the delivered copy did not go through the broker's timer")
			}
			// The upper bound catches a wrong delay, not a slow pull: 5 s
			// of slack for a consumer on a loaded CI machine.
			if waited > 2500*time.Millisecond+time.Second+5*time.Second {
				t.Errorf("arrived after %v, long after its 2.5 s delay and the 1 s timer precision", waited)
			}
		})
	}
}

func TestPublisher_refuses_delay_millis_on_a_broker_without_timer_messages(t *testing.T) {
	for _, target := range timerTargets(false) {
		t.Run(target.name, func(t *testing.T) {
			ns := target.nameServers(t)
			pub := newPublisherAt(t, ns, rocketmq.PublisherConfig{})
			topic := newTopic()
			if err := pub.Publish(topic, message.NewMessage("create", []byte("c"))); err != nil {
				t.Fatal(err)
			}
			m := message.NewMessage(watermill.NewUUID(), []byte("x"))
			m.Metadata.Set(metadata.DelayMillis, "2500")
			err := pub.Publish(topic, m)
			if !errors.Is(err, rocketmq.ErrTimerUnsupported) || !policy.IsPermanent(err) {
				t.Fatalf("Publish = %v, want a permanent ErrTimerUnsupported", err)
			}
			sub := newSubscriberAt(t, ns, rocketmq.SubscriberConfig{})
			msgs := subscribe(t, sub, topic)
			receiveUUID(t, msgs, "create", target.patience)
			select {
			case got := <-msgs:
				t.Fatalf("refused message delivered: %s", got.UUID)
			case <-time.After(3 * time.Second):
			}
		})
	}
}

// nativeRetryAfter runs a handler under redelivery with the NativeScheduler with a
// fixed policy delay on a BrokerRetry subscriber, fails the first delivery,
// and returns how long the redelivery took and the probe.
func nativeRetryAfter(t *testing.T, target brokerTarget, delay time.Duration, timerRetry bool) (time.Duration, *timerProbe, *message.Message) {
	ns := target.nameServers(t)
	probe := newTimerProbe()
	sub := newSubscriberAt(t, ns, rocketmq.SubscriberConfig{BrokerRetry: true, TimerRetry: timerRetry,
		MaxReconsumeTimes: 3, Marshaler: probe, ConsumeBatch: 1})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)
	pub := newPublisherAt(t, ns, rocketmq.PublisherConfig{})
	r, err := redelivery.New(redelivery.Config{
		ConsumerGroup: sub.GroupFor(topic), Handler: "h", Scheduler: rocketmq.NewNativeScheduler(rocketmq.NativeConfig{}),
		Policy:              policy.Policy{MaxAttempts: 3, Backoff: policy.Fixed(delay)},
		DeadLetterPublisher: pub,
	}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var (
		mu       sync.Mutex
		failedAt time.Time
		firstID  string
	)
	redelivered := make(chan *message.Message, 1)
	h := r.Middleware(func(m *message.Message) ([]*message.Message, error) {
		if m.UUID == "warm-up" {
			return nil, nil
		}
		if m.Metadata.Get(metadata.ReconsumeTimes) == "0" {
			mu.Lock()
			failedAt = time.Now()
			firstID = m.Metadata.Get(metadata.RocketMQMsgID)
			mu.Unlock()
			return nil, errors.New("first attempt fails")
		}
		redelivered <- m
		return nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for m := range msgs {
			if _, err := h(m); err != nil {
				m.Nack()
			} else {
				m.Ack()
			}
			if ctx.Err() != nil {
				return
			}
		}
	}()
	if err := pub.Publish(topic, message.NewMessage("warm-up", []byte("w"))); err != nil {
		t.Fatal(err)
	}
	sent := message.NewMessage(watermill.NewUUID(), []byte("p"))
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-redelivered:
		mu.Lock()
		waited, id := time.Since(failedAt), firstID
		mu.Unlock()
		if m.UUID != sent.UUID || m.Metadata.Get(metadata.ReconsumeTimes) != "1" {
			t.Errorf("redelivered %s with reconsume times %s, want %s with 1", m.UUID, m.Metadata.Get(metadata.ReconsumeTimes), sent.UUID)
		}
		if got := m.Metadata.Get(metadata.RocketMQMsgID); id == "" || got != id {
			t.Errorf("redelivered with msg id %q, the first delivery had %q", got, id)
		}
		if got := m.Metadata.Get(metadata.RocketMQTopic); got != topic {
			t.Errorf("redelivered from topic %q, want the original %q", got, topic)
		}
		return waited, probe, m
	case <-time.After(3 * target.patience):
		t.Fatalf("no redelivery within %v", 3*target.patience)
	}
	return 0, nil, nil
}

func TestSubscriber_timer_retry_waits_the_exact_native_policy_delay_on_a_broker_with_timer_messages(t *testing.T) {
	for _, target := range timerTargets(true) {
		t.Run(target.name, func(t *testing.T) {
			waited, probe, m := nativeRetryAfter(t, target, 1500*time.Millisecond, true)
			t.Logf("a Native retry with a 1500 ms policy delay came after %v", waited)
			if waited < 1500*time.Millisecond {
				t.Errorf("redelivered after %v, before the 1.5 s delay", waited)
			}
			if !probe.viaTimer(m.UUID, 1) {
				t.Errorf("the redelivery did not go through the broker's timer")
			}
			// The upper bound catches a wrong delay, not a slow pull: 5 s
			// of slack for a consumer on a loaded CI machine.
			if waited > 1500*time.Millisecond+time.Second+5*time.Second {
				t.Errorf("redelivered after %v, long after the 1.5 s delay and the 1 s timer precision", waited)
			}
		})
	}
}

func TestSubscriber_timer_retry_falls_back_to_the_delay_level_on_a_broker_without_timer_messages(t *testing.T) {
	for _, target := range timerTargets(false) {
		t.Run(target.name, func(t *testing.T) {
			waited, probe, m := nativeRetryAfter(t, target, 1500*time.Millisecond, true)
			t.Logf("a Native retry with a 1500 ms policy delay came after %v", waited)
			// rocketmq.DelayLevelFor(1.5 s) is level 2: 2 s on these brokers.
			if waited < 1500*time.Millisecond {
				t.Errorf("redelivered after %v, before the 1.5 s delay", waited)
			}
			if probe.viaTimer(m.UUID, 1) || !probe.viaLevel(m.UUID, 1) {
				t.Errorf("the redelivery did not come from the delay level")
			}
		})
	}
}

func receiveUUID(t *testing.T, msgs <-chan *message.Message, uuid string, timeout time.Duration) *message.Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-msgs:
			m.Ack()
			if m.UUID == uuid {
				return m
			}
		case <-deadline:
			t.Fatalf("message %s not delivered within %v", uuid, timeout)
		}
	}
}

func newPublisherAt(t *testing.T, ns []string, cfg rocketmq.PublisherConfig) *rocketmq.Publisher {
	t.Helper()
	cfg.NameServers = ns
	p, err := rocketmq.NewPublisher(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func newSubscriberAt(t *testing.T, ns []string, cfg rocketmq.SubscriberConfig) *rocketmq.Subscriber {
	t.Helper()
	cfg.NameServers = ns
	cfg.ConsumerGroup = "g-" + watermill.NewShortUUID()
	cfg.CloseTimeout = 2 * time.Second
	s, err := rocketmq.NewSubscriber(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The timer path counts reconsume times as the level path does, and leaves
// the message due for the dead-letter queue to the broker's send-back.
func TestSubscriber_timer_retry_keeps_the_reconsume_count_and_dead_letters_at_the_maximum(t *testing.T) {
	b := newBroker(t, rocketmqtest.Config{TimerPrecision: 10 * time.Millisecond, DelayScale: 0.01})
	ns := []string{b.NameServerAddr()}
	probe := newTimerProbe()
	sub := newSubscriberAt(t, ns, rocketmq.SubscriberConfig{BrokerRetry: true, TimerRetry: true, MaxReconsumeTimes: 2, Marshaler: probe})
	topic := newTopic()
	msgs := subscribe(t, sub, topic)
	pub := newPublisherAt(t, ns, rocketmq.PublisherConfig{})
	sent := message.NewMessage(watermill.NewUUID(), []byte("p"))
	if err := pub.Publish(topic, sent); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for want := 0; want <= 2; want++ {
		m := receiveNack(t, msgs, sent.UUID, 20*time.Second, func(m *message.Message) {
			m.Metadata.Set(metadata.DelayLevel, "1")
			m.Metadata.Set(metadata.RetryDelayMillis, "150")
		})
		if got := m.Metadata.Get(metadata.ReconsumeTimes); got != strconv.Itoa(want) {
			t.Fatalf("delivery %d has reconsume times %s", want, got)
		}
		ids = append(ids, m.Metadata.Get(metadata.RocketMQMsgID))
		if want > 0 && !probe.viaTimer(sent.UUID, want) {
			t.Errorf("redelivery %d did not come through the timer", want)
		}
	}
	if ids[0] == "" || ids[1] != ids[0] || ids[2] != ids[0] {
		t.Errorf("msg ids %q, want one id", ids)
	}
	dlq := "%DLQ%" + sub.GroupFor(topic)
	deadline := time.Now().Add(10 * time.Second)
	for len(b.Messages(dlq)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	dead := b.Messages(dlq)
	if len(dead) != 1 || dead[0].Properties[rocketmq.PropertyUUID] != sent.UUID || dead[0].ReconsumeTimes != 3 {
		t.Fatalf("DLQ holds %+v, want the message after 3 consumptions", dead)
	}
}

func receiveNack(t *testing.T, msgs <-chan *message.Message, uuid string, timeout time.Duration, before func(*message.Message)) *message.Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-msgs:
			if m.UUID != uuid {
				m.Ack()
				continue
			}
			before(m)
			m.Nack()
			return m
		case <-deadline:
			t.Fatalf("message %s not delivered within %v", uuid, timeout)
		}
	}
}
