package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/examples/internal/exampledb"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runAndCheck(t *testing.T, cfg Config) {
	t.Helper()
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	if err := res.Check(); err != nil {
		t.Errorf("%v\n%s", err, out.String())
	}
	if len(res.Committed) != 2 || res.Orders != 2 {
		t.Errorf("committed %d events, %d orders; want 2 and 2", len(res.Committed), res.Orders)
	}
	for _, id := range res.Committed {
		if n := res.Delivered[id]; n != 1 {
			t.Errorf("event %s delivered %d times, want 1", id, n)
		}
	}
	for _, line := range []string{"ROLLBACK", "outbox holds 2 rows, nothing sent yet", "outbox holds 0 rows"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
}

// unique returns table names no other run uses on a shared server, and
// drops the tables when the test ends.
func unique(t *testing.T, dsn string) Config {
	s := time.Now().UnixNano()
	cfg := Config{DSN: dsn, OrdersTable: fmt.Sprint("outbox_ex_orders_", s), OutboxTable: fmt.Sprint("outbox_ex_events_", s)}
	t.Cleanup(func() {
		db, err := exampledb.Open(dsn)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP TABLE IF EXISTS " + cfg.OrdersTable)
		_, _ = db.Exec("DROP TABLE IF EXISTS " + cfg.OutboxTable)
	})
	return cfg
}

func TestRun_on_SQLite_delivers_committed_events_only(t *testing.T) {
	runAndCheck(t, Config{})
}

func TestRun_on_PostgreSQL_delivers_committed_events_only(t *testing.T) {
	runAndCheck(t, unique(t, servicetest.Postgres.Addr(t)))
}

func TestRun_on_MariaDB_delivers_committed_events_only(t *testing.T) {
	runAndCheck(t, unique(t, "mysql://"+servicetest.MySQL.Addr(t)))
}

// mysqlURL turns a go-sql-driver DSN into the mysql://user:pass@host:port/db
// URL form the reliamq command takes.
func mysqlURL(t *testing.T, driverDSN string) string {
	cfg, err := mysql.ParseDSN(driverDSN)
	if err != nil {
		t.Fatal(err)
	}
	u := url.URL{Scheme: "mysql", Host: cfg.Addr, Path: "/" + cfg.DBName}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	} else {
		u.User = url.User(cfg.User)
	}
	return u.String()
}

func TestRun_takes_the_MySQL_URL_form_the_command_takes_and_drops_the_tables_it_created(t *testing.T) {
	dsn := mysqlURL(t, servicetest.MySQL.Addr(t))
	cfg := unique(t, dsn)
	runAndCheck(t, cfg)
	db, err := exampledb.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, table := range []string{cfg.OrdersTable, cfg.OutboxTable} {
		if tableExists(context.Background(), db.DB, table) {
			t.Errorf("table %s is left after the run", table)
		}
	}
	// With Keep, they stay (and unique's cleanup drops them).
	cfg.Keep = true
	runAndCheck(t, cfg)
	for _, table := range []string{cfg.OrdersTable, cfg.OutboxTable} {
		if !tableExists(context.Background(), db.DB, table) {
			t.Errorf("table %s was dropped despite Keep", table)
		}
	}
}
