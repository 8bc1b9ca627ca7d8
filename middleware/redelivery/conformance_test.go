package redelivery_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/redelivery/redeliverytest"
)

// sharedSubscriber keeps a gochannel open when a router closes its
// subscriber, so a restarted consumer of the same test can subscribe again.
type sharedSubscriber struct{ *gochannel.GoChannel }

func (sharedSubscriber) Close() error { return nil }

// goChannelPerTest is one serial gochannel per test (every consumer group
// sees every message: gochannel has no groups, which is what two groups on
// one topic look like), closed at the end of the test.
var goChannelPerTest = redeliverytest.PerTest(func(t *testing.T) *gochannel.GoChannel {
	ps := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = ps.Close() })
	return ps
})

func goChannelPubSub(t *testing.T, _ string) (message.Publisher, message.Subscriber) {
	ps := goChannelPerTest(t)
	return ps, sharedSubscriber{ps}
}

func TestConformance_gochannel_in_memory(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true}, redeliverytest.Backend{
		NewPubSub: goChannelPubSub,
		Configure: func(_ *testing.T, cfg *redelivery.Config) {
			cfg.Scheduler = redelivery.NewInMemory(redelivery.InMemoryConfig{})
		},
	})
}

// durableIn returns a Configure function parking waiting messages in one
// store per test, built by newStore.
func durableIn(newStore func(t *testing.T) *sqlstore.Store) func(t *testing.T, cfg *redelivery.Config) {
	perTest := redeliverytest.PerTest(newStore)
	return func(t *testing.T, cfg *redelivery.Config) {
		cfg.Scheduler = redelivery.NewDurable(redelivery.DurableConfig{Store: perTest(t), PollInterval: 20 * time.Millisecond})
	}
}

func sqliteStore(t *testing.T) *sqlstore.Store {
	return sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{Table: "reliamq_redelivery"})
}

// watermill-sql v3.1.0 has no SQLite schema, so the SQLite run carries the
// messages over gochannel and parks the waiting ones in SQLite.
func TestConformance_SQLite_durable(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true}, redeliverytest.Backend{
		NewPubSub: goChannelPubSub,
		Configure: durableIn(sqliteStore),
	})
}
