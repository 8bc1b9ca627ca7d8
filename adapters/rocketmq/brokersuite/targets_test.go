//go:build !race

package brokersuite_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

func TestMain(m *testing.M) {
	rocketmqtest.VerifyNoLeaks(m, leakOptions()...)
}

// leakOptions are what this package ignores beyond the client's leftovers
// (rocketmqtest.LeakOptions).
func leakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func2"),
		goleak.IgnoreAnyFunction("github.com/ThreeDotsLabs/watermill/internal/subscriber.(*multiplier).Subscribe.func3"),
	}
}

// DelayLevels is the delay level list of every target: level n waits n
// seconds. .ci/run starts the real clusters with the same list.
const DelayLevels = "1s 2s 3s 4s 5s 6s 7s 8s 9s 10s 11s 12s 13s 14s 15s 16s 17s 18s"

// delayOf is how long delay level n waits on every target.
func delayOf(level int) time.Duration { return time.Duration(level) * time.Second }

func embeddedDelayLevels() []time.Duration {
	levels := make([]time.Duration, 18)
	for i := range levels {
		levels[i] = delayOf(i + 1)
	}
	return levels
}

// target is one RocketMQ a test body runs against.
type target struct {
	name        string
	real        bool
	nameServers []string
	brokers     int // brokers serving topics

	broker  *rocketmqtest.Broker         // embedded only
	cluster *servicetest.RocketMQCluster // real only
}

// targetNames are the subtest names, in order.
var targetNames = []string{"embedded", "4.9.4", "5.2.0"}

func realServer(name string) servicetest.RocketMQServer {
	if name == "4.9.4" {
		return servicetest.RocketMQ494
	}
	return servicetest.RocketMQ520
}

// open returns the target for t. Real clusters are locked for the rest of
// the test: shared, or exclusively for tests that stop brokers.
func open(t *testing.T, name string, exclusive bool) *target {
	t.Helper()
	if name == "embedded" {
		b := rocketmqtest.NewTest(t, rocketmqtest.Config{
			DelayLevels:  embeddedDelayLevels(),
			LongPollHold: 200 * time.Millisecond,
		})
		return &target{name: name, nameServers: []string{b.NameServerAddr()}, brokers: 1, broker: b}
	}
	srv := realServer(name)
	var c *servicetest.RocketMQCluster
	if exclusive {
		c = srv.Exclusive(t)
		// A test that failed half way must not leave the cluster down for
		// the next one.
		t.Cleanup(func() { c.EnsureRunning(t) })
	} else {
		c = srv.Cluster(t)
	}
	n := len(c.Brokers)
	if n == 0 {
		n = 1
	}
	return &target{name: name, real: true, nameServers: []string{c.NameServer}, brokers: n, cluster: c}
}

// eachTarget runs body once per target, each in a parallel subtest.
func eachTarget(t *testing.T, body func(t *testing.T, tg *target)) {
	t.Helper()
	for _, name := range targetNames {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			body(t, open(t, name, false))
		})
	}
}

// eachTargetExclusive runs body once per target, one after another, with the
// real clusters locked exclusively. Call it from a test that is not parallel:
// Go runs those before every parallel test, so this package never waits for
// its own shared locks while holding the places of parallel tests.
func eachTargetExclusive(t *testing.T, body func(t *testing.T, tg *target)) {
	t.Helper()
	for _, name := range targetNames {
		t.Run(name, func(t *testing.T) { body(t, open(t, name, true)) })
	}
}

// stopBrokers stops every broker of the target gracefully; their stores stay.
func (tg *target) stopBrokers(t *testing.T) {
	t.Helper()
	if !tg.real {
		if err := tg.broker.Stop(); err != nil {
			t.Fatalf("stop the embedded broker: %v", err)
		}
		return
	}
	for i := range tg.brokers {
		tg.cluster.StopBroker(t, i)
	}
}

// startBrokers starts the brokers stopBrokers stopped, on the same stores, and
// returns once they are registered with the name server.
func (tg *target) startBrokers(t *testing.T) {
	t.Helper()
	if !tg.real {
		if err := tg.broker.Restart(); err != nil {
			t.Fatalf("restart the embedded broker: %v", err)
		}
		return
	}
	for i := range tg.brokers {
		tg.cluster.StartBroker(t, i)
	}
}
