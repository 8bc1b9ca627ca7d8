//go:build !race

// The RocketMQ client has data races of its own: these tests run without -race.

package journal_test

import (
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/internal/transporttest"
)

// The embedded broker and the real RocketMQ 4.9.4 and 5.2.0 clusters, through
// adapters/rocketmq: every message the journal accepted is delivered,
// through a period in which the broker publisher fails.
func TestJournal_loses_nothing_on_RocketMQ_through_a_failing_broker_publisher(t *testing.T) {
	for _, tg := range transporttest.RocketMQTargets(rocketmqtest.Config{LongPollHold: 200 * time.Millisecond}) {
		t.Run(tg.Name, func(t *testing.T) {
			tr := transporttest.RocketMQ("rocketmq-"+tg.Name, tg.NameServers,
				rocketmq.PublisherConfig{}, rocketmq.SubscriberConfig{})
			runBackend(t, tr, 2*time.Minute)
		})
	}
}
