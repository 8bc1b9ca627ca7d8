package redelivery_test

import (
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/internal/transporttest"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/redelivery/redeliverytest"
)

// gochannel: one serial gochannel per test; every consumer group sees every
// message (gochannel has no groups, which is what two groups on one topic
// look like).
func TestConformance_gochannel_in_memory(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true}, redeliverytest.Backend{
		NewPubSub: transporttest.GoChannel().NewPubSub,
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

// sqliteStore is a store in an SQLite file of the test's own.
func sqliteStore(t *testing.T) *sqlstore.Store {
	return sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{Table: "reliamq_redelivery"})
}

// watermill-sql v3.1.0 has no SQLite schema, so the SQLite transport carries
// the messages over gochannel; the waiting ones are parked in its SQLite
// file.
func TestConformance_SQLite_durable(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true},
		sqlBackend(transporttest.SQLite(t)))
}
