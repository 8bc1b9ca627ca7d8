package journal_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/middleware/journal"
	"github.com/reliamq/reliamq/pkg/queue"
)

// openJournal opens (creating) the SQLite journal file at path, with the
// settings the package documentation advises.
func openJournal(t testing.TB, path string) *sqlstore.Store {
	t.Helper()
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec("PRAGMA synchronous=NORMAL"); err != nil {
		t.Fatalf("pragma: %v", err)
	}
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, Table: "journal", AutoInitialize: true}, nil)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	return st
}

func newStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	return openJournal(t, filepath.Join(t.TempDir(), "journal.db"))
}

// newJournal builds a journal and closes it at the end of the test (if the
// test did not).
func newJournal(t testing.TB, inner message.Publisher, cfg journal.Config) *journal.Publisher {
	t.Helper()
	j, err := journal.New(inner, cfg, nil)
	if err != nil {
		t.Fatalf("journal.New: %v", err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func rowsOf(t testing.TB, st *sqlstore.Store, q string) []queue.Row {
	t.Helper()
	rows, err := st.List(context.Background(), sqlstore.Filter{Queue: q, Limit: 1_000_000})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return rows
}

// waitFor polls cond until it holds or 10 s passed.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// gatedStore is a journal store whose Insert waits while the gate is
// closed and refuses the rows whose UUID is in refuse.
type gatedStore struct {
	*sqlstore.Store
	mu      sync.Mutex
	gate    chan struct{} // nil: open
	refuse  map[string]bool
	inserts [][]string // UUIDs of each Insert call
}

func (g *gatedStore) Insert(ctx context.Context, rows ...queue.Row) error {
	g.mu.Lock()
	gate := g.gate
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.UUID
	}
	g.inserts = append(g.inserts, ids)
	var bad error
	for _, r := range rows {
		if g.refuse[r.UUID] {
			bad = errors.Join(queue.ErrInvalidMessage, errors.New("refused by the test store: "+r.UUID))
		}
	}
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if bad != nil {
		return bad
	}
	return g.Store.Insert(ctx, rows...)
}

func (g *gatedStore) insertCalls() [][]string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]string(nil), g.inserts...)
}
