package redelivery_test

import (
	"testing"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/internal/transporttest"
	"github.com/reliamq/reliamq/middleware/redelivery/redeliverytest"
)

// externalHeadOfLine keeps the head-of-line test of real servers within the
// package's time budget; gochannel and SQLite run the full 10,000.
const externalHeadOfLine = 2000

// sqlBackend runs the suite on an SQL transport with sqlstore as the
// durable delay, in the transport's database.
func sqlBackend(tr transporttest.Transport) redeliverytest.Backend {
	return redeliverytest.Backend{
		NewPubSub: tr.NewPubSub,
		Configure: durableIn(func(t *testing.T) *sqlstore.Store {
			return sqlstoretest.NewStore(t, tr.Dialect, sqlstore.Config{DB: tr.DB, Table: sqlstoretest.UniqueName("rq_waiting")})
		}),
	}
}

func TestConformance_PostgreSQL_durable(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine},
		sqlBackend(transporttest.SQL(t, sqlstore.Postgres)))
}

func TestConformance_MariaDB_durable(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine},
		sqlBackend(transporttest.SQL(t, sqlstore.MySQL)))
}

// sqliteDurable parks waiting messages in SQLite for the broker backends.
var sqliteDurable = durableIn(sqliteStore)

// brokerBackend carries the messages over tr and parks the waiting ones in
// SQLite.
func brokerBackend(tr transporttest.Transport) redeliverytest.Backend {
	return redeliverytest.Backend{NewPubSub: tr.NewPubSub, Configure: sqliteDurable}
}

// RabbitMQ: one durable queue per topic and group, so groups on one topic
// each get every message.
func TestConformance_RabbitMQ_durable(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine},
		brokerBackend(transporttest.RabbitMQ(t)))
}

// NATS JetStream: one durable consumer per group and topic.
func TestConformance_NATS_JetStream_durable(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine},
		brokerBackend(transporttest.NATSJetStream(t)))
}

func TestConformance_Redis_streams_durable(t *testing.T) {
	redeliverytest.Run(t, redeliverytest.Features{ConsumerGroups: true, Durable: true, HeadOfLineMessages: externalHeadOfLine},
		brokerBackend(transporttest.RedisStreams(t)))
}
