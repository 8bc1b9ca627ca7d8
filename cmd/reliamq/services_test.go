package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/redelivery"
)

// serverDB opens the server database of dialect and returns its DSN, the
// handle and a table name unique to the test. The stores the test creates
// with newStore are dropped at cleanup.
func serverDB(t *testing.T, dialect sqlstore.Dialect) (string, *sql.DB, string) {
	t.Helper()
	dsn := sqlstoretest.DSN(t, dialect)
	db, err := sqlstoretest.OpenDSN(dialect, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return dsn, db, sqlstoretest.UniqueName("cli")
}

func TestCommand_on_PostgreSQL_and_MariaDB(t *testing.T) {
	services := []struct {
		name    string
		dialect sqlstore.Dialect
		// dsnForms are the other spellings of the same DSN that must work too.
		dsnForms func(dsn string) []string
		// wrong is a DSN of an unreachable server.
		wrong string
	}{
		{"PostgreSQL", sqlstore.Postgres,
			func(dsn string) []string { return []string{strings.Replace(dsn, "postgres://", "postgresql://", 1)} },
			"postgres://root@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"},
		{"MariaDB", sqlstore.MySQL,
			func(dsn string) []string { return []string{"mysql://" + dsn} },
			"mysql://root@127.0.0.1:1/test?timeout=2s"},
	}
	for _, s := range services {
		t.Run(s.name, func(t *testing.T) {
			dsn, db, table := serverDB(t, s.dialect)
			st := newStore(t, db, s.dialect, table)
			seedFallback(t, st)

			rows := runCmd(t, "", "fallback", "ls", "--dsn", dsn, "--table", table, "-o", "json",
				"--topic", "orders", "--older-than", "5m", "--error-contains", "refused").want(t, exitOK).rowsJSON(t)
			if diff := cmp.Diff([]string{"o1", "o2"}, uuids(rows)); diff != "" {
				t.Fatalf("ls (-want +got):\n%s", diff)
			}
			for _, form := range s.dsnForms(dsn) {
				rows := runCmd(t, "", "fallback", "ls", "--dsn", form, "--table", table, "-o", "json").want(t, exitOK).rowsJSON(t)
				if len(rows) != 3 {
					t.Fatalf("DSN form %q listed %d rows", form, len(rows))
				}
			}
			r := runCmd(t, "", "fallback", "show", "--dsn", dsn, "--table", table, fmt.Sprint(rows[0].ID)).want(t, exitOK)
			if !strings.Contains(r.stdout, `{"order":1}`) {
				t.Fatalf("show:\n%s", r.stdout)
			}
			runCmd(t, "", "fallback", "ls", "--dsn", dsn, "--table", table, "--topic", "nope").want(t, exitNotFound)
			r = runCmd(t, "", "fallback", "ls", "--dsn", dsn, "--table", table+"_missing").want(t, exitNotFound)
			if !strings.Contains(r.stderr, "does not exist") {
				t.Fatalf("missing table: %q", r.stderr)
			}
			r = runCmd(t, "", "fallback", "ls", "--dsn", s.wrong, "--timeout", "3s").want(t, exitRuntime)
			if !strings.Contains(r.stderr, "cannot connect") {
				t.Fatalf("unreachable server: %q", r.stderr)
			}

			// Replay into a second queue moves the rows in one transaction each.
			_, sum := runCmd(t, "", "fallback", "replay", "--dsn", dsn, "--table", table, "--topic", "orders",
				"--to-store", "--to-queue", "manual", "--rate", "0", "-o", "json").want(t, exitOK).replayJSON(t)
			if sum["replayed"] != 2 {
				t.Fatalf("replay summary %v", sum)
			}
			if diff := cmp.Diff([]string{"o1", "o2"}, rowUUIDs(listAll(t, st, "manual"))); diff != "" {
				t.Fatalf("moved rows (-want +got):\n%s", diff)
			}
			runCmd(t, "no\n", "fallback", "purge", "--dsn", dsn, "--table", table, "--queue", "manual").want(t, exitNotConfirmed)
			runCmd(t, "yes\n", "fallback", "purge", "--dsn", dsn, "--table", table, "--queue", "manual").want(t, exitOK)
			if got := listAll(t, st, "manual"); len(got) != 0 {
				t.Fatalf("purged queue still has %v", rowUUIDs(got))
			}
			if diff := cmp.Diff([]string{"i1"}, rowUUIDs(listAll(t, st, ""))); diff != "" {
				t.Fatalf("untouched queue (-want +got):\n%s", diff)
			}

			// Dead letters on this server, replayed into the fallback table.
			dlq := newStore(t, db, s.dialect, table+"_dlq")
			m := newDeadLetterMessage("d1", "payments")
			deadLetter(t, dlq, "billing", m)
			rows = runCmd(t, "", "dlq", "ls", "--dsn", dsn, "--table", table+"_dlq", "-o", "json").want(t, exitOK).rowsJSON(t)
			if len(rows) != 1 || rows[0].Topic != "payments" || rows[0].ConsumerGroup != "billing" {
				t.Fatalf("dlq ls %+v", rows)
			}
			runCmd(t, "", "dlq", "replay", "--dsn", dsn, "--table", table+"_dlq", "--to-store", "--to-table", table,
				"--rate", "0").want(t, exitOK)
			if got := listAll(t, dlq, ""); len(got) != 0 {
				t.Fatalf("dlq still has %v", rowUUIDs(got))
			}
			back, err := st.List(context.Background(), sqlstore.Filter{Topic: redelivery.DefaultRetryTopic("billing", "charge")})
			if err != nil {
				t.Fatal(err)
			}
			if len(back) != 1 || back[0].UUID != "d1" {
				t.Fatalf("replayed dead letter in fallback table: %v", rowUUIDs(back))
			}
		})
	}
}
