package fallback_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/fallback"
)

// waitDrained polls the store until queue is empty.
func waitDrained(t *testing.T, st *sqlstore.Store, queue string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := st.Stats(context.Background(), queue)
		if err == nil && s.Backlog == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained after %v: %+v, %v", timeout, s, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// twoRelaysLease is the lease of both relays of the two-relay tests: longer
// than the drain, so a row sent twice can only mean two claims of one lease.
const twoRelaysLease = 30 * time.Second

func twoRelaysRows() int {
	if testing.Short() {
		return 2000
	}
	return 10000
}

// drainWithTwoRelays stores rows for topic in a fresh table of be and drains
// them with two relays, each with its own Store (its own lease owner, as a
// second process would have) and its own publisher. It returns the stored
// UUIDs, the time the drain took and the store of the first relay.
func drainWithTwoRelays(t *testing.T, be backend, topic string, n int, pubs [2]message.Publisher,
	concurrency int) ([]string, time.Duration, *sqlstore.Store) {
	t.Helper()
	db := sqlstoretest.Open(t, be.Dialect)
	first := newStore(t, be, db, nil)
	second, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: be.Dialect, Table: first.Table(),
		LeaseTimeout: twoRelaysLease}, nil)
	if err != nil {
		t.Fatalf("second store: %v", err)
	}
	ids := insertRowsOn(t, first, topic, n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	start := time.Now()
	for i, st := range []*sqlstore.Store{first, second} {
		r, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: pubs[i],
			PollInterval: 10 * time.Millisecond, BatchSize: 100, Concurrency: concurrency}, nil)
		if err != nil {
			cancel()
			t.Fatalf("new relay: %v", err)
		}
		go func() { done <- r.Run(ctx) }()
	}
	defer func() {
		cancel()
		for i := 0; i < 2; i++ {
			if err := <-done; err != nil {
				t.Errorf("relay run: %v", err)
			}
		}
	}()
	waitDrained(t, first, "", 60*time.Second)
	return ids, time.Since(start), first
}

// relaySend is one send of a row, seen wherever the test counts.
type relaySend struct {
	UUID  string
	Relay int // 0 or 1
}

// checkTwoRelays asserts what two relays on one table promise: every row
// sent at least once, no row sent by both unless a lease expired during the
// drain, both relays did part of the work, and the table is empty.
func checkTwoRelays(t *testing.T, st *sqlstore.Store, ids []string, sends []relaySend, elapsed time.Duration) {
	t.Helper()
	count := map[string]int{}
	by := map[string][2]int{}
	byRelay := [2]int{}
	for _, s := range sends {
		count[s.UUID]++
		c := by[s.UUID]
		c[s.Relay]++
		by[s.UUID] = c
		byRelay[s.Relay]++
	}
	_, lost, dupes := tally(ids, count)
	both := 0
	for _, id := range ids {
		if c := by[id]; c[0] > 0 && c[1] > 0 {
			both++
		}
	}
	t.Logf("%s: %d rows in %v; relay 1 sent %d, relay 2 sent %d; lost %d, duplicates %d, sent by both %d",
		st.Dialect(), len(ids), elapsed.Round(time.Millisecond), byRelay[0], byRelay[1], lost, dupes, both)
	if lost != 0 {
		t.Errorf("lost %d rows", lost)
	}
	if both != 0 && elapsed < twoRelaysLease {
		t.Errorf("%d rows sent by both relays without any lease expiring", both)
	}
	if dupes != 0 && elapsed < twoRelaysLease {
		t.Errorf("%d rows sent twice without any lease expiring", dupes)
	}
	if len(count) != len(ids) {
		t.Errorf("%d distinct UUIDs sent, want the %d stored", len(count), len(ids))
	}
	if byRelay[0] == 0 || byRelay[1] == 0 {
		t.Errorf("one relay did all the work (%v): the test did not exercise concurrent claims", byRelay)
	}
	if rows := rowsOf(t, st, ""); len(rows) != 0 {
		t.Errorf("%d rows left in the table", len(rows))
	}
}

// The sends are counted in memory here, so the test also runs under -race;
// broker_concurrency_test.go counts them at the embedded broker.
func TestRelay_two_relays_on_one_database_drain_every_row_once(t *testing.T) {
	for _, be := range []backend{postgresBackend, mysqlBackend} {
		t.Run(be.Name, func(t *testing.T) {
			recs := [2]*fakepub.Publisher{{}, {}}
			ids, elapsed, st := drainWithTwoRelays(t, be, "orders", twoRelaysRows(), [2]message.Publisher{recs[0], recs[1]}, 1)
			var sends []relaySend
			for i, rec := range recs {
				for _, s := range sentOf(rec) {
					sends = append(sends, relaySend{UUID: s.UUID, Relay: i})
				}
			}
			checkTwoRelays(t, st, ids, sends, elapsed)
		})
	}
}
