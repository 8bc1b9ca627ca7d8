//go:build !race

package rocketmq_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// brokerTarget is a broker a test body runs against: the embedded one or a
// real cluster.
type brokerTarget struct {
	name string
	// nameServers starts or finds the broker for t.
	nameServers func(t *testing.T) []string
	// patience bounds each wait for a delivery.
	patience time.Duration
}

func brokerTargets() []brokerTarget {
	return []brokerTarget{
		{name: "embedded", patience: 20 * time.Second, nameServers: func(t *testing.T) []string {
			return []string{newBroker(t, rocketmqtest.Config{DelayScale: 0.05}).NameServerAddr()}
		}},
		{name: "RocketMQ 4.9.4", patience: 60 * time.Second, nameServers: func(t *testing.T) []string {
			return []string{servicetest.RocketMQ494.Cluster(t).NameServer}
		}},
		{name: "RocketMQ 5.2.0", patience: 60 * time.Second, nameServers: func(t *testing.T) []string {
			return []string{servicetest.RocketMQ520.Cluster(t).NameServer}
		}},
	}
}

// Regression: RocketMQ brokers drop properties with empty values on single
// sends and on every retry and dead-letter copy (batches keep them until
// their first redelivery), so a message sent with k="" arrived without k.
func TestDefaultMarshaler_empty_metadata_values_survive_single_batch_retry_and_dead_letter(t *testing.T) {
	for _, target := range brokerTargets() {
		t.Run(target.name, func(t *testing.T) {
			emptyValuesSurviveEveryPath(t, target.nameServers(t), target.patience)
		})
	}
}

func emptyValuesSurviveEveryPath(t *testing.T, nameServers []string, patience time.Duration) {
	topic := newTopic()
	newPub := func(batch bool) *rocketmq.Publisher {
		p, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: nameServers, Batch: batch}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	newSub := func(cfg rocketmq.SubscriberConfig) *rocketmq.Subscriber {
		cfg.NameServers = nameServers
		cfg.ConsumerGroup = "g-" + watermill.NewShortUUID()
		cfg.CloseTimeout = 2 * time.Second
		s, err := rocketmq.NewSubscriber(cfg, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	withEmpty := func(uuid string) *message.Message {
		m := message.NewMessage(uuid, []byte(uuid))
		m.Metadata = message.Metadata{"k": "", "x": "v"}
		return m
	}
	check := func(where string, m *message.Message) {
		t.Helper()
		if v, ok := m.Metadata["k"]; !ok || v != "" {
			t.Errorf("%s: message %s has k=%q (present %v), want k=\"\"", where, m.UUID, v, ok)
		}
		if v := m.Metadata.Get("x"); v != "v" {
			t.Errorf("%s: message %s has x=%q, want v", where, m.UUID, v)
		}
	}

	// Subscribed before publishing so %RETRY%<group> exists before the
	// consumer starts.
	sub := newSub(rocketmq.SubscriberConfig{BrokerRetry: true, MaxReconsumeTimes: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	single := "single-" + watermill.NewShortUUID()
	batch := []string{"batch1-" + watermill.NewShortUUID(), "batch2-" + watermill.NewShortUUID()}
	if err := newPub(false).Publish(topic, withEmpty(single)); err != nil {
		t.Fatalf("single send: %v", err)
	}
	if err := newPub(true).Publish(topic, withEmpty(batch[0]), withEmpty(batch[1])); err != nil {
		t.Fatalf("batch send: %v", err)
	}
	want := map[string]bool{single: true, batch[0]: true, batch[1]: true}

	// First delivery, then the broker's redelivery (delay level 1), each
	// nacked: after MaxReconsumeTimes=1 the second nack dead-letters.
	seen := map[string]map[string]bool{}
	deadline := time.After(3 * patience)
	for done := 0; done < 2*len(want); {
		select {
		case m := <-msgs:
			if !want[m.UUID] {
				m.Ack()
				continue
			}
			rt := m.Metadata.Get(metadata.ReconsumeTimes)
			if seen[m.UUID] == nil {
				seen[m.UUID] = map[string]bool{}
			}
			if !seen[m.UUID][rt] {
				seen[m.UUID][rt] = true
				done++
				path := map[string]string{"0": "first delivery", "1": "broker retry"}[rt]
				check(path, m)
			}
			m.Metadata.Set(metadata.DelayLevel, "1")
			m.Nack()
		case <-deadline:
			t.Fatalf("deliveries by UUID and reconsume count: %v, want 0 and 1 for each of %v", seen, want)
		}
	}

	dlq := newSub(rocketmq.SubscriberConfig{})
	dead, err := dlq.Subscribe(ctx, "%DLQ%"+sub.GroupFor(topic))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	deadline = time.After(3 * patience)
	for len(got) < len(want) {
		select {
		case m := <-dead:
			if want[m.UUID] && !got[m.UUID] {
				got[m.UUID] = true
				check("dead letter", m)
			}
			m.Ack()
		case <-deadline:
			t.Fatalf("dead letters %v, want %v", got, want)
		}
	}
}
