package inbox_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/internal/transporttest"
	"github.com/reliamq/reliamq/middleware/redelivery"
)

// The backends of the redelivery conformance suite (the Watermill
// transports of internal/transporttest), each run with the SQL inbox (in
// the transport's database for the SQL transports, PostgreSQL otherwise)
// and with the Redis inbox.

const scenarioMessages = 20

func inMemory(_ *testing.T, cfg *redelivery.Config) {
	cfg.Scheduler = redelivery.NewInMemory(redelivery.InMemoryConfig{})
}

// durableIn parks waiting messages in a store table of db (of dialect d),
// or, when db is nil, of an SQLite file of the test's own.
func durableIn(d sqlstore.Dialect, db *sql.DB) func(t *testing.T, cfg *redelivery.Config) {
	return func(t *testing.T, cfg *redelivery.Config) {
		cfg.Scheduler = redelivery.NewDurable(redelivery.DurableConfig{
			Store:        sqlstoretest.NewStore(t, d, sqlstore.Config{DB: db}),
			PollInterval: 20 * time.Millisecond,
		})
	}
}

func postgresInbox(t *testing.T) store {
	return newSQLStore(t, sqlstore.Postgres, sqlstoretest.Open(t, sqlstore.Postgres), nil)
}

// inboxFor is the SQL inbox of a transport: in its database, PostgreSQL
// when it has none.
func inboxFor(t *testing.T, tr transporttest.Transport) store {
	if tr.DB == nil {
		return postgresInbox(t)
	}
	return newSQLStore(t, tr.Dialect, tr.DB, nil)
}

// scenarioTransport gives a transport of the table the redelivery mode the
// scenario runs it with: in memory on gochannel, the durable scheduler in
// the transport's database (SQLite, PostgreSQL, MariaDB) or in an SQLite
// file (the brokers).
func scenarioTransport(tr transporttest.Transport) transport {
	configure := durableIn(sqlstore.SQLite, nil)
	switch {
	case tr.Name == "gochannel":
		configure = inMemory
	case tr.DB != nil:
		configure = durableIn(tr.Dialect, tr.DB)
	}
	return transport{Transport: tr, configure: configure, timeout: time.Minute}
}

func TestInbox_runs_each_UUID_once_on_every_backend_with_duplicates_retries_and_a_replay(t *testing.T) {
	for _, c := range transporttest.Watermill() {
		t.Run(c.Name, func(t *testing.T) {
			t.Run("sql-inbox", func(t *testing.T) {
				tr := scenarioTransport(c.New(t))
				runDuplicateScenario(t, tr, inboxFor(t, tr.Transport), scenarioMessages)
			})
			t.Run("redis-inbox", func(t *testing.T) {
				runDuplicateScenario(t, scenarioTransport(c.New(t)), newRedisStore(t, redisinboxConfig()), scenarioMessages)
			})
		})
	}
}
