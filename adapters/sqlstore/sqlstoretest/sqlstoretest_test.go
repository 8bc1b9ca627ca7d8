package sqlstoretest_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
)

func TestUniqueName_is_a_valid_table_name_not_repeated(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		name := sqlstoretest.UniqueName("tbl")
		if !regexp.MustCompile(`^tbl_[0-9a-f]{12}$`).MatchString(name) {
			t.Fatalf("UniqueName(tbl) = %q, want tbl_ and 12 hex digits", name)
		}
		if err := sqlstore.ValidateTable(name); err != nil {
			t.Fatalf("UniqueName gave an invalid table name: %v", err)
		}
		if seen[name] {
			t.Fatalf("UniqueName repeated %q within 1000 calls", name)
		}
		seen[name] = true
	}
}

func TestDialects_follow_Backends(t *testing.T) {
	ds := sqlstoretest.Dialects()
	bs := sqlstoretest.Backends()
	if len(ds) != 3 || len(bs) != 3 {
		t.Fatalf("Dialects %v, Backends %v: want the three dialects", ds, bs)
	}
	for i := range bs {
		if ds[i] != bs[i].Dialect || string(bs[i].Dialect) != bs[i].Name {
			t.Errorf("backend %d: %+v, dialect %q", i, bs[i], ds[i])
		}
	}
}

// tableExists asks the database itself, so the test does not trust the
// store under test.
func tableExists(t *testing.T, st *sqlstore.Store) bool {
	t.Helper()
	var q string
	switch st.Dialect() {
	case sqlstore.SQLite:
		q = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	case sqlstore.Postgres:
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = $1"
	default:
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?"
	}
	var n int
	if err := st.DB().QueryRow(q, st.Table()).Scan(&n); err != nil {
		t.Fatalf("look up table %s: %v", st.Table(), err)
	}
	return n == 1
}

func TestNewStore_creates_a_usable_table_and_drops_it_at_cleanup(t *testing.T) {
	sqlstoretest.ForEach(t, sqlstoretest.Backends(), func(t *testing.T, be sqlstoretest.Backend) {
		db := sqlstoretest.Open(t, be.Dialect)
		var st *sqlstore.Store
		t.Run("store", func(t *testing.T) {
			st = sqlstoretest.NewStore(t, be.Dialect, sqlstore.Config{DB: db})
			if st.Dialect() != be.Dialect {
				t.Errorf("store dialect %q, want %q", st.Dialect(), be.Dialect)
			}
			ctx := context.Background()
			if err := st.Insert(ctx, sqlstore.Message{Topic: "t", UUID: "u1", Payload: []byte("p")}); err != nil {
				t.Fatalf("insert: %v", err)
			}
			if s, err := st.Stats(ctx, ""); err != nil || s.Backlog != 1 {
				t.Fatalf("stats %+v, %v: want one row", s, err)
			}
			if !tableExists(t, st) {
				t.Fatalf("table %s not found while the test runs", st.Table())
			}
		})
		if st == nil {
			t.FailNow()
		}
		if tableExists(t, st) {
			t.Errorf("table %s still exists after the test that created it ended", st.Table())
		}
	})
}

func TestNewStore_gives_every_store_its_own_table(t *testing.T) {
	a := sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{})
	b := sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{DB: a.DB()})
	if a.Table() == b.Table() {
		t.Fatalf("two stores share table %s", a.Table())
	}
	kept := sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{DB: a.DB(), Table: "named_table"})
	if kept.Table() != "named_table" {
		t.Errorf("table %q, want the configured named_table", kept.Table())
	}
}

func TestOpenDSN_rejects_an_unknown_dialect(t *testing.T) {
	if db, err := sqlstoretest.OpenDSN("oracle", "x"); err == nil {
		_ = db.Close()
		t.Fatal("OpenDSN(oracle) succeeded")
	}
}

func TestOpen_keeps_idle_connections_for_concurrent_writers(t *testing.T) {
	sqlstoretest.ForEach(t, sqlstoretest.ServerBackends(), func(t *testing.T, be sqlstoretest.Backend) {
		db := sqlstoretest.Open(t, be.Dialect)
		ctx := context.Background()
		// Hold eight connections at once, then give them back: all of them
		// must stay in the pool.
		const n = 8
		conns := make([]interface{ Close() error }, 0, n)
		for i := 0; i < n; i++ {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatalf("conn %d: %v", i, err)
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			_ = c.Close()
		}
		if idle := db.Stats().Idle; idle != n {
			t.Errorf("%d idle connections after returning %d, want all kept", idle, n)
		}
	})
}
