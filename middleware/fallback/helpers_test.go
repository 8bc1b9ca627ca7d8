package fallback_test

import (
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
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

// sent is one message seen by a recorder.
type sent struct {
	Topic    string
	UUID     string
	Payload  string
	Metadata map[string]string
}

// recorder is a publisher that fails while fail returns an error and records
// every message it accepted.
type recorder struct {
	mu    sync.Mutex
	fail  func(topic string, msg *message.Message) error
	calls int
	got   []sent
}

func (r *recorder) Publish(topic string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	for _, m := range msgs {
		if r.fail != nil {
			if err := r.fail(topic, m); err != nil {
				return err
			}
		}
	}
	for _, m := range msgs {
		md := map[string]string{}
		for k, v := range m.Metadata {
			md[k] = v
		}
		r.got = append(r.got, sent{Topic: topic, UUID: m.UUID, Payload: string(m.Payload), Metadata: md})
	}
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) setFail(f func(topic string, msg *message.Message) error) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

func (r *recorder) sent() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.got...)
}

func (r *recorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func alwaysFail(err error) func(string, *message.Message) error {
	return func(string, *message.Message) error { return err }
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
