package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
)

// Without AutoInitialize a missing table used to be found only by the first
// fallback write, during a broker outage, which then lost its message.
func TestNew_refuses_a_missing_table_without_auto_initialize(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := sqlstoretest.Open(t, be.Dialect)
		table := sqlstoretest.UniqueName("missing")
		_, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: be.Dialect, Table: table}, nil)
		if !errors.Is(err, sqlstore.ErrMissingTable) {
			t.Fatalf("New on a missing table = %v; want ErrMissingTable", err)
		}
	})
}

func TestNew_refuses_a_table_without_the_stores_columns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := sqlstoretest.Open(t, be.Dialect)
		table := sqlstoretest.UniqueName("partial")
		sqlstoretest.DropAtCleanup(t, db, table)
		if _, err := db.Exec("CREATE TABLE " + table + " (id BIGINT PRIMARY KEY, topic VARCHAR(255))"); err != nil {
			t.Fatal(err)
		}
		_, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: be.Dialect, Table: table}, nil)
		if !errors.Is(err, sqlstore.ErrMissingTable) {
			t.Fatalf("New on a table without the store's columns = %v; want ErrMissingTable", err)
		}
	})
}

func TestNew_accepts_a_table_created_beforehand(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := sqlstoretest.Open(t, be.Dialect)
		table := sqlstoretest.UniqueName("ready")
		sqlstoretest.DropAtCleanup(t, db, table)
		stmts, err := sqlstore.SchemaSQL(be.Dialect, table)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if _, err := db.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
		st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: be.Dialect, Table: table}, nil)
		if err != nil {
			t.Fatalf("New on an existing table = %v", err)
		}
		if err := st.Insert(context.Background(), sqlstore.FromMessage("", "t", message.NewMessage("u1", nil))); err != nil {
			t.Fatalf("Insert = %v", err)
		}
	})
}

// A database that does not answer at start-up is an outage like any later
// one: writes report it (and the fallback returns ErrNotStored); New does not
// refuse to start.
func TestNew_does_not_refuse_a_database_that_does_not_answer(t *testing.T) {
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.Postgres}, nil); err != nil {
		t.Fatalf("New = %v; want a store whose writes report the outage", err)
	}
}
