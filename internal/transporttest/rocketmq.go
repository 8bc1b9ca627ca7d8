//go:build !race

// The RocketMQ client has data races of its own: the RocketMQ transports
// exist only in builds without -race, as the tests that run them.

package transporttest

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/middleware/redelivery/redeliverytest"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// RocketMQ is adapters/rocketmq on the name servers nameServers returns for
// the test calling NewPubSub. pub and sub are templates: NewPubSub fills in
// NameServers, and sub's ConsumerGroup with its group; sub.CloseTimeout
// defaults to 5s. The topics stay on the broker (an embedded broker goes
// with its test; a real cluster keeps them, every test using its own
// names).
func RocketMQ(name string, nameServers func(t *testing.T) []string,
	pub rocketmq.PublisherConfig, sub rocketmq.SubscriberConfig) Transport {
	if sub.CloseTimeout == 0 {
		sub.CloseTimeout = 5 * time.Second
	}
	return Transport{Name: name, NewPubSub: func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		ns := nameServers(t)
		pc, sc := pub, sub
		pc.NameServers, sc.NameServers, sc.ConsumerGroup = ns, ns, group
		p, err := rocketmq.NewPublisher(pc, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		s, err := rocketmq.NewSubscriber(sc, watermill.NopLogger{})
		if err != nil {
			t.Fatal(err)
		}
		return p, Closed(t, s)
	}}
}

// Embedded starts an embedded broker with cfg for each test that asks (once
// per test, stopped when it ends) and returns its name server.
func Embedded(cfg rocketmqtest.Config) func(t *testing.T) []string {
	return redeliverytest.PerTest(func(t *testing.T) []string {
		return []string{rocketmqtest.NewTest(t, cfg).NameServerAddr()}
	})
}

// Cluster returns the name server of a real cluster for each test that asks,
// holding the cluster's shared lock until the test ends (see
// servicetest.RocketMQServer.Cluster): skipped when the cluster is not
// configured or unreachable, failed under CI.
func Cluster(s servicetest.RocketMQServer) func(t *testing.T) []string {
	return redeliverytest.PerTest(func(t *testing.T) []string {
		return []string{s.Cluster(t).NameServer}
	})
}

// Target is a RocketMQ deployment to run on.
type Target struct {
	// Name is "embedded", "4.9.4" or "5.2.0".
	Name string
	// NameServers returns the target's name servers for a test, starting
	// an embedded broker for it or taking a real cluster's shared lock.
	NameServers func(t *testing.T) []string
}

// RocketMQTargets is the embedded broker (started with embedded, one per
// test) and the real RocketMQ 4.9.4 and 5.2.0 clusters.
func RocketMQTargets(embedded rocketmqtest.Config) []Target {
	return []Target{
		{"embedded", Embedded(embedded)},
		{servicetest.RocketMQ494.Version, Cluster(servicetest.RocketMQ494)},
		{servicetest.RocketMQ520.Version, Cluster(servicetest.RocketMQ520)},
	}
}
