package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// lookupDB opens the database of one dialect: a fresh SQLite file, or the
// shared PostgreSQL/MariaDB test servers (skipped when down outside CI).
func lookupDB(t *testing.T, d sqlstore.Dialect) *sql.DB {
	t.Helper()
	var (
		db  *sql.DB
		err error
	)
	switch d {
	case sqlstore.SQLite:
		db, err = sqlite.Open(filepath.Join(t.TempDir(), "store.db"))
	case sqlstore.Postgres:
		db, err = sql.Open("pgx", servicetest.Postgres.Addr(t))
	case sqlstore.MySQL:
		db, err = sql.Open("mysql", servicetest.MySQL.Addr(t))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// lookupTable returns a table name no other test uses.
func lookupTable(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "lookup_" + hex.EncodeToString(b[:])
}

// forEachLookupDialect runs fn on a fresh table of every dialect, with a
// store on a fake clock starting at start; the table is dropped afterwards.
func forEachLookupDialect(t *testing.T, start time.Time, fn func(t *testing.T, st *sqlstore.Store, clk *clocktest.Fake)) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres, sqlstore.MySQL} {
		t.Run(string(d), func(t *testing.T) {
			db := lookupDB(t, d)
			table := lookupTable(t)
			clk := clocktest.NewFake(start)
			st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: d, Table: table, AutoInitialize: true, Clock: clk}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = db.Exec("DROP TABLE " + table) })
			fn(t, st, clk)
		})
	}
}

func rowUUIDs(msgs []sqlstore.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.UUID
	}
	return out
}

func TestStore_Get_returns_a_row_of_any_queue_and_ErrNotFound_for_a_missing_id(t *testing.T) {
	forEachLookupDialect(t, time.Now(), func(t *testing.T, st *sqlstore.Store, _ *clocktest.Fake) {
		ctx := context.Background()
		created := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
		if err := st.Insert(ctx,
			sqlstore.Message{Topic: "orders", UUID: "a", Payload: []byte("x")},
			sqlstore.Message{Queue: "poison", Topic: "orders", UUID: "b", Payload: []byte("payload"),
				Metadata: map[string]string{"k": "v"}, Attempts: 2, CreatedAt: created, FirstError: "boom"},
		); err != nil {
			t.Fatal(err)
		}
		rows, err := st.List(ctx, sqlstore.Filter{AllQueues: true})
		if err != nil || len(rows) != 2 {
			t.Fatalf("List = %v, %v", rows, err)
		}
		got, err := st.Get(ctx, rows[1].ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(rows[1], got); diff != "" {
			t.Fatalf("Get differs from List (-list +get):\n%s", diff)
		}
		if got.Queue != "poison" || got.UUID != "b" || string(got.Payload) != "payload" ||
			got.Metadata["k"] != "v" || got.Attempts != 2 || !got.CreatedAt.Equal(created) || got.FirstError != "boom" {
			t.Fatalf("Get = %+v", got)
		}
		missing := rows[1].ID + 1000
		if _, err := st.Get(ctx, missing); !errors.Is(err, sqlstore.ErrNotFound) {
			t.Fatalf("Get(missing) = %v; want ErrNotFound", err)
		}
		if err := st.Delete(ctx, rows[0].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, rows[0].ID); !errors.Is(err, sqlstore.ErrNotFound) {
			t.Fatalf("Get(deleted) = %v; want ErrNotFound", err)
		}
	})
}

func TestStore_List_OlderThan_keeps_rows_created_at_least_that_long_ago_on_the_store_clock(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	forEachLookupDialect(t, now, func(t *testing.T, st *sqlstore.Store, clk *clocktest.Fake) {
		ctx := context.Background()
		if err := st.Insert(ctx,
			sqlstore.Message{Topic: "t", UUID: "3d", CreatedAt: now.Add(-72 * time.Hour)},
			sqlstore.Message{Topic: "t", UUID: "exactly-1h", CreatedAt: now.Add(-time.Hour)},
			sqlstore.Message{Topic: "t", UUID: "59m", CreatedAt: now.Add(-59 * time.Minute)},
			sqlstore.Message{Topic: "t", UUID: "now", CreatedAt: now},
		); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name      string
			olderThan time.Duration
			want      []string
		}{
			{"zero is no condition", 0, []string{"3d", "exactly-1h", "59m", "now"}},
			{"one hour includes the boundary", time.Hour, []string{"3d", "exactly-1h"}},
			{"two days", 48 * time.Hour, []string{"3d"}},
			{"older than every row", 100 * time.Hour, []string{}},
		}
		for _, tt := range tests {
			rows, err := st.List(ctx, sqlstore.Filter{OlderThan: tt.olderThan})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, rowUUIDs(rows)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
		}
		// The age is measured on the Store's clock, not the wall clock.
		clk.Advance(2 * time.Minute)
		rows, err := st.List(ctx, sqlstore.Filter{OlderThan: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"3d", "exactly-1h", "59m"}, rowUUIDs(rows)); diff != "" {
			t.Errorf("after 2 minutes (-want +got):\n%s", diff)
		}
	})
}

func TestStore_List_ErrorContains_matches_first_or_last_error_literally_and_case_sensitively(t *testing.T) {
	forEachLookupDialect(t, time.Now(), func(t *testing.T, st *sqlstore.Store, _ *clocktest.Fake) {
		ctx := context.Background()
		if err := st.Insert(ctx,
			sqlstore.Message{Topic: "t", UUID: "first", FirstError: "dial tcp: i/o timeout"},
			sqlstore.Message{Topic: "t", UUID: "upper", FirstError: "TIMEOUT waiting"},
			sqlstore.Message{Topic: "t", UUID: "last", FirstError: "broker busy"},
			sqlstore.Message{Topic: "t", UUID: "wild", FirstError: "quota 100% used_up"},
			sqlstore.Message{Topic: "t", UUID: "quote", FirstError: "it's ; DROP TABLE x; --"},
			sqlstore.Message{Topic: "t", UUID: "none"},
		); err != nil {
			t.Fatal(err)
		}
		rows, err := st.List(ctx, sqlstore.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		// "last" failed again with a timeout: only its last_error says so.
		if err := st.Reschedule(ctx, rows[2].ID, time.Now(), "send: timeout after 3s"); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			contains string
			want     []string
		}{
			{"in first or last error", "timeout", []string{"first", "last"}},
			{"case-sensitive", "TIMEOUT", []string{"upper"}},
			{"percent is not a wildcard", "0%", []string{"wild"}},
			{"underscore is not a wildcard", "d_u", []string{"wild"}},
			{"percent alone matches only its own text", "%", []string{"wild"}},
			{"quotes and SQL stay data", "it's ; DROP", []string{"quote"}},
			{"no match", "refused", []string{}},
		}
		for _, tt := range tests {
			got, err := st.List(ctx, sqlstore.Filter{ErrorContains: tt.contains})
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.want, rowUUIDs(got)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.name, diff)
			}
		}
		// Conditions combine with AND, and with paging.
		got, err := st.List(ctx, sqlstore.Filter{ErrorContains: "timeout", AfterID: rows[0].ID})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"last"}, rowUUIDs(got)); diff != "" {
			t.Errorf("with AfterID (-want +got):\n%s", diff)
		}
		if n, err := st.TableExists(ctx); err != nil || !n {
			t.Fatalf("table gone after the filters: %v, %v", n, err)
		}
	})
}

func TestStore_List_rejects_filters_no_query_can_carry(t *testing.T) {
	db := lookupDB(t, sqlstore.SQLite)
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, Table: lookupTable(t), AutoInitialize: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []sqlstore.Filter{
		{OlderThan: -time.Second},
		{ErrorContains: "a\x00b"},
		{ErrorContains: "\xff\xfe"},
	} {
		_, err := st.List(context.Background(), f)
		if !errors.Is(err, sqlstore.ErrInvalidFilter) || !policy.IsPermanent(err) {
			t.Errorf("List(%+v) = %v; want a permanent ErrInvalidFilter", f, err)
		}
	}
}

func TestStore_TableExists_tells_a_missing_table_from_a_present_one(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres, sqlstore.MySQL} {
		t.Run(string(d), func(t *testing.T) {
			db := lookupDB(t, d)
			ctx := context.Background()
			table := lookupTable(t)
			st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: d, Table: table, AutoInitialize: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("DROP TABLE " + table); err != nil {
				t.Fatal(err)
			}
			if ok, err := st.TableExists(ctx); err != nil || ok {
				t.Fatalf("before creation: TableExists = %v, %v; want false", ok, err)
			}
			if err := st.InitializeSchema(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = db.Exec("DROP TABLE " + table) })
			if ok, err := st.TableExists(ctx); err != nil || !ok {
				t.Fatalf("after creation: TableExists = %v, %v; want true", ok, err)
			}
			// A database failure is an error, not "missing".
			closed := lookupDB(t, d)
			broken, err := sqlstore.New(sqlstore.Config{DB: closed, Dialect: d, Table: table, AutoInitialize: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_ = closed.Close()
			if ok, err := broken.TableExists(ctx); !errors.Is(err, sqlstore.ErrStoreUnavailable) || ok {
				t.Fatalf("closed database: TableExists = %v, %v; want ErrStoreUnavailable", ok, err)
			}
		})
	}
}
