package fallback_test

import (
	"context"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/sqlstore"
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

func TestRelay_two_relays_on_one_database_drain_every_row_once(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000
	}
	for _, be := range []backend{postgresBackend, mysqlBackend} {
		t.Run(be.name, func(t *testing.T) {
			const lease = 30 * time.Second
			db := be.open(t)
			first := newStore(t, be, db, nil)
			// The second relay has its own Store (own lease owner), as a
			// second process would.
			second, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: be.dialect, Table: first.Table(), LeaseTimeout: lease}, nil)
			if err != nil {
				t.Fatalf("second store: %v", err)
			}
			ids := insertRows(t, first, "", n)
			recs := []*recorder{{}, {}}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 2)
			start := time.Now()
			for i, st := range []*sqlstore.Store{first, second} {
				r, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: recs[i],
					PollInterval: 10 * time.Millisecond, BatchSize: 100}, nil)
				if err != nil {
					t.Fatalf("new relay: %v", err)
				}
				go func() { done <- r.Run(ctx) }()
			}
			waitDrained(t, first, "", 60*time.Second)
			elapsed := time.Since(start)
			cancel()
			<-done
			<-done

			count := map[string]int{}
			byRelay := [2]int{}
			for i, rec := range recs {
				for _, s := range rec.sent() {
					count[s.UUID]++
					byRelay[i]++
				}
			}
			lost, dupes := 0, 0
			for _, id := range ids {
				switch c := count[id]; {
				case c == 0:
					lost++
				case c > 1:
					dupes += c - 1
				}
			}
			t.Logf("%s: %d rows in %v; relay 1 sent %d, relay 2 sent %d; lost %d, duplicates %d",
				be.name, n, elapsed.Round(time.Millisecond), byRelay[0], byRelay[1], lost, dupes)
			if lost != 0 {
				t.Errorf("lost %d rows", lost)
			}
			if dupes != 0 && elapsed < lease {
				t.Errorf("%d rows sent twice without any lease expiring", dupes)
			}
			if byRelay[0] == 0 || byRelay[1] == 0 {
				t.Errorf("one relay did all the work (%v): the test did not exercise concurrent claims", byRelay)
			}
			if rows := rowsOf(t, first, ""); len(rows) != 0 {
				t.Errorf("%d rows left in the table", len(rows))
			}
		})
	}
}
