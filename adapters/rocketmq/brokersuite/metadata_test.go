//go:build !race

package brokersuite_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// metadataCases are the metadata sets every send path must deliver unchanged.
func metadataCases() []struct {
	name string
	md   message.Metadata
} {
	large := message.Metadata{"big": strings.Repeat("ß", 8*1024)} // 16 KiB of UTF-8
	for i := range 8 {
		large["k"+string(rune('a'+i))] = strings.Repeat(string(rune('0'+i)), 1024)
	}
	return []struct {
		name string
		md   message.Metadata
	}{
		{"ASCII", message.Metadata{"plain": "value", "with space": "a b", "punctuation": `k=v;x:y,"z"&%/\`}},
		{"unicode", message.Metadata{"unicode ✓": "значение", "emoji": "🚀", "cjk": "消息队列"}},
		{"empty values", message.Metadata{"empty": "", "also-empty": "", "kept": "v"}},
		{"large values", large},
	}
}

// Every case goes through a single send, a batch of two, and a broker
// redelivery of each (BrokerRetry, delay level 1); every delivery must carry
// the metadata as sent.
func TestMetadata_round_trips_through_single_and_batched_sends_and_broker_redelivery(t *testing.T) {
	t.Parallel()
	eachTarget(t, func(t *testing.T, tg *target) {
		for _, c := range metadataCases() {
			t.Run(c.name, func(t *testing.T) {
				single := newPublisher(t, tg, rocketmq.PublisherConfig{})
				batch := newPublisher(t, tg, rocketmq.PublisherConfig{Batch: true})
				sub := newSubscriber(t, tg, rocketmq.SubscriberConfig{BrokerRetry: true})
				topic := unique("md")
				msgs := subscribe(t, sub, topic)

				sent := map[string]string{} // UUID -> payload
				one := newMessage("single", c.md)
				b1, b2 := newMessage("batch-1", c.md), newMessage("batch-2", c.md)
				for _, m := range []*message.Message{one, b1, b2} {
					sent[m.UUID] = string(m.Payload)
				}
				if err := single.Publish(topic, one); err != nil {
					t.Fatalf("single Publish: %v", err)
				}
				if err := batch.Publish(topic, b1, b2); err != nil {
					t.Fatalf("batch Publish: %v", err)
				}

				first, again := map[string]bool{}, map[string]bool{}
				for len(first) < len(sent) || len(again) < len(sent) {
					m := receive(t, msgs, 60*time.Second)
					payload, ok := sent[m.UUID]
					if !ok {
						t.Fatalf("delivered a message never sent: %s", m.UUID)
					}
					if string(m.Payload) != payload {
						t.Errorf("%s: payload %q, want %q", m.UUID, m.Payload, payload)
					}
					n := m.Metadata.Get(metadata.ReconsumeTimes)
					if diff := cmp.Diff(map[string]string(c.md), userMetadata(m)); diff != "" {
						t.Errorf("%s (reconsume %s) metadata (-sent +delivered):\n%s", payload, n, diff)
					}
					switch n {
					case "0":
						first[m.UUID] = true
						m.Metadata.Set(metadata.DelayLevel, "1")
						m.Nack()
					case "1":
						again[m.UUID] = true
						m.Ack()
					default:
						t.Fatalf("%s delivered with reconsume times %q", payload, n)
					}
				}
			})
		}
	})
}
