//go:build !race

package fallback_test

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/internal/fakepub"
)

// relayTagKey is the metadata key tagged sets, so each copy the broker
// stores names the relay that sent it.
const relayTagKey = "test_relay"

// tagged sends through pub, marking every message with the name of its relay.
func tagged(pub message.Publisher, relay string) *fakepub.Publisher {
	return &fakepub.Publisher{Func: func(topic string, msgs []*message.Message) error {
		for _, m := range msgs {
			m.Metadata.Set(relayTagKey, relay)
		}
		return pub.Publish(topic, msgs...)
	}}
}

func TestRelay_two_relays_on_one_database_deliver_every_row_to_the_broker_once(t *testing.T) {
	for _, be := range []backend{postgresBackend, mysqlBackend} {
		t.Run(be.Name, func(t *testing.T) {
			b := newBroker(t, rocketmqtest.Config{})
			topic := uniqueName("two")
			b.CreateTopic(rocketmqtest.TopicConfig{Name: topic})
			pubs := [2]message.Publisher{
				tagged(newRocketMQPublisher(t, b), "0"),
				tagged(newRocketMQPublisher(t, b), "1"),
			}
			ids, elapsed, st := drainWithTwoRelays(t, be, topic, twoRelaysRows(), pubs, 4)
			var sends []relaySend
			for _, m := range b.Messages(topic) {
				s := relaySend{UUID: m.Properties[rocketmq.PropertyUUID]}
				switch tag := m.Properties[rocketmq.PropertyMetadataPrefix+relayTagKey]; tag {
				case "0", "1":
					s.Relay = int(tag[0] - '0')
				default:
					t.Fatalf("message %s at the broker names relay %q", s.UUID, tag)
				}
				sends = append(sends, s)
			}
			checkTwoRelays(t, st, ids, sends, elapsed)
		})
	}
}
