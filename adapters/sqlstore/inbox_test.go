package sqlstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/pkg/inbox"
)

func TestNewInbox_refuses_a_missing_table_without_auto_initialize(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := sqlstoretest.Open(t, be.Dialect)
		_, err := sqlstore.NewInbox(sqlstore.InboxConfig{DB: db, Dialect: be.Dialect, Table: sqlstoretest.UniqueName("missing")}, nil)
		if !errors.Is(err, sqlstore.ErrMissingTable) {
			t.Fatalf("NewInbox on a missing table = %v; want ErrMissingTable", err)
		}
	})
}

// The statements of InboxSchemaSQL, run by an operator, make a table NewInbox
// accepts and Begin, Commit and Purge work on.
func TestNewInbox_accepts_a_table_created_with_InboxSchemaSQL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := sqlstoretest.Open(t, be.Dialect)
		table := sqlstoretest.UniqueName("inbox")
		sqlstoretest.DropAtCleanup(t, db, table)
		stmts, err := sqlstore.InboxSchemaSQL(be.Dialect, table)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if _, err := db.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
		ib, err := sqlstore.NewInbox(sqlstore.InboxConfig{DB: db, Dialect: be.Dialect, Table: table}, nil)
		if err != nil {
			t.Fatalf("NewInbox = %v", err)
		}
		ctx := context.Background()
		key := inbox.Key{ConsumerGroup: "g", Handler: "h", UUID: "u1"}
		e, err := ib.Begin(ctx, key, -time.Second) // expired at once
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := ib.Begin(ctx, key, time.Hour); !errors.Is(err, inbox.ErrDuplicate) {
			t.Fatalf("second Begin = %v; want ErrDuplicate", err)
		}
		if n, err := ib.Purge(ctx, 10); err != nil || n != 1 {
			t.Fatalf("Purge = %d, %v; want 1", n, err)
		}
		e, err = ib.Begin(ctx, key, time.Hour)
		if err != nil {
			t.Fatalf("Begin after the purge = %v", err)
		}
		_ = e.Abort(ctx)
	})
}

func TestNewInbox_validates_its_config(t *testing.T) {
	db := sqlstoretest.Open(t, sqlstore.SQLite)
	for _, cfg := range []sqlstore.InboxConfig{
		{Dialect: sqlstore.SQLite},
		{DB: db},
		{DB: db, Dialect: "oracle"},
		{DB: db, Dialect: sqlstore.SQLite, Table: "bad-name; DROP TABLE x"},
	} {
		if _, err := sqlstore.NewInbox(cfg, nil); !errors.Is(err, sqlstore.ErrInvalidConfig) {
			t.Errorf("NewInbox(%+v) = %v; want ErrInvalidConfig", cfg, err)
		}
	}
	if _, err := sqlstore.InboxSchemaSQL(sqlstore.Postgres, "x;y"); !errors.Is(err, sqlstore.ErrInvalidTable) {
		t.Errorf("InboxSchemaSQL with a bad table = %v; want ErrInvalidTable", err)
	}
}

func TestInbox_Begin_refuses_a_bad_key_before_any_SQL(t *testing.T) {
	db := sqlstoretest.Open(t, sqlstore.SQLite)
	table := sqlstoretest.UniqueName("inbox")
	sqlstoretest.DropAtCleanup(t, db, table)
	ib, err := sqlstore.NewInbox(sqlstore.InboxConfig{DB: db, Dialect: sqlstore.SQLite, Table: table, AutoInitialize: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	for _, k := range []inbox.Key{{UUID: ""}, {UUID: string(long)}, {UUID: "a\x00b"}, {UUID: "u", Handler: "\xff"}} {
		if _, err := ib.Begin(context.Background(), k, time.Hour); !errors.Is(err, inbox.ErrInvalidKey) {
			t.Errorf("Begin(%q) = %v; want ErrInvalidKey", k, err)
		}
	}
}

// With go-sql-driver's clientFoundRows=true an "ON DUPLICATE KEY UPDATE"
// reports a found duplicate as one affected row, which would have made a
// duplicate look new and run the handler again.
func TestInbox_finds_duplicates_on_a_MySQL_connection_with_clientFoundRows(t *testing.T) {
	dsn := sqlstoretest.DSN(t, sqlstore.MySQL)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	db, err := sqlstoretest.OpenDSN(sqlstore.MySQL, dsn+sep+"clientFoundRows=true")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	table := sqlstoretest.UniqueName("inbox")
	sqlstoretest.DropAtCleanup(t, db, table)
	ib, err := sqlstore.NewInbox(sqlstore.InboxConfig{DB: db, Dialect: sqlstore.MySQL, Table: table, AutoInitialize: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := inbox.Key{ConsumerGroup: "g", Handler: "h", UUID: "u1"}
	e, err := ib.Begin(ctx, key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ib.Begin(ctx, key, time.Hour); !errors.Is(err, inbox.ErrDuplicate) {
		t.Fatalf("second Begin = %v; want ErrDuplicate", err)
	}
}
