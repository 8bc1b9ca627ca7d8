package fallback_test

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/pkg/clock"
)

var errBrokerDown = errors.New("broker down")

type backend = sqlstoretest.Backend

var (
	backends        = sqlstoretest.Backends()
	sqliteBackend   = backends[0]
	postgresBackend = backends[1]
	mysqlBackend    = backends[2]
	uniqueName      = sqlstoretest.UniqueName
)

// newStore creates a fresh table (dropped at the end of the test), on db or
// on a new database of the backend when db is nil.
func newStore(t testing.TB, be backend, db *sql.DB, clk clock.Clock) *sqlstore.Store {
	t.Helper()
	return sqlstoretest.NewStore(t, be.Dialect, sqlstore.Config{DB: db, Clock: clk, LeaseTimeout: 30 * time.Second})
}

// sent is one message a fakepub.Publisher accepted.
type sent struct {
	Topic    string
	UUID     string
	Payload  string
	Metadata map[string]string
}

// sentOf returns what p accepted, in order, as sent values.
func sentOf(p *fakepub.Publisher) []sent {
	var out []sent
	for _, r := range p.Accepted() {
		md := map[string]string{}
		for k, v := range r.Msg.Metadata {
			md[k] = v
		}
		out = append(out, sent{Topic: r.Topic, UUID: r.Msg.UUID, Payload: string(r.Msg.Payload), Metadata: md})
	}
	return out
}

// tally compares how often each sent UUID was seen with the UUIDs sent:
// delivered counts the UUIDs seen at least once, dupes the extra copies.
func tally(sent []string, count map[string]int) (delivered, lost, dupes int) {
	for _, id := range sent {
		switch c := count[id]; {
		case c == 0:
			lost++
		default:
			delivered++
			dupes += c - 1
		}
	}
	return delivered, lost, dupes
}
