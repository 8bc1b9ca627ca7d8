package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/pkg/clock"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// result is what one in-process run of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the command in process with stdin and the real clock.
func runCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCmdClock(t, clock.Real{}, stdin, args...)
}

func runCmdClock(t *testing.T, clk clock.Clock, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := runWith(ctx, args, env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, clock: clk})
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

// rowsJSON decodes the --json output of ls or show.
func (r result) rowsJSON(t *testing.T) []rowJSON {
	t.Helper()
	var rows []rowJSON
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("stdout is not a JSON array of rows: %v\n%s", err, r.stdout)
	}
	return rows
}

// replayJSON decodes the --json output of replay: one line per message, then
// the summary.
func (r result) replayJSON(t *testing.T) ([]replayLine, map[string]int) {
	t.Helper()
	var lines []replayLine
	var summary map[string]int
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if l == "" {
			continue
		}
		if strings.HasPrefix(l, `{"summary"`) {
			var s struct{ Summary map[string]int }
			if err := json.Unmarshal([]byte(l), &s); err != nil {
				t.Fatalf("summary line %q: %v", l, err)
			}
			summary = s.Summary
			continue
		}
		var rl replayLine
		if err := json.Unmarshal([]byte(l), &rl); err != nil {
			t.Fatalf("replay line %q: %v", l, err)
		}
		lines = append(lines, rl)
	}
	if summary == nil {
		t.Fatalf("no summary line in\n%s", r.stdout)
	}
	return lines, summary
}

func uuids(rows []rowJSON) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.UUID
	}
	return out
}

// sqliteDB creates a SQLite database file and returns the DSN the command
// takes for it and the database. The helper's DSN is a bare file path; the
// command is given it as a sqlite:// URL, the form users type.
func sqliteDB(t *testing.T) (string, *sql.DB) {
	t.Helper()
	path := sqlstoretest.DSN(t, sqlstore.SQLite)
	db, err := sqlstoretest.OpenDSN(sqlstore.SQLite, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return "sqlite://" + path, db
}

// newStore creates the store of table in db, dropped when the test ends.
func newStore(t *testing.T, db *sql.DB, dialect sqlstore.Dialect, table string) *sqlstore.Store {
	t.Helper()
	return sqlstoretest.NewStore(t, dialect, sqlstore.Config{DB: db, Table: table})
}

// seedFallback inserts the fallback rows most tests use:
//
//	o1 orders    3h old   "dial tcp: connection refused"
//	o2 orders    10m old  "dial tcp: connection refused"
//	i1 invoices  1m old   "send timeout"
func seedFallback(t *testing.T, st *sqlstore.Store) {
	t.Helper()
	now := time.Now()
	rows := []sqlstore.Message{
		{Topic: "orders", UUID: "o1", Payload: []byte(`{"order":1}`), Metadata: map[string]string{"tenant": "a"},
			CreatedAt: now.Add(-3 * time.Hour), NextAttemptAt: now.Add(time.Hour), Attempts: 4,
			FirstError: "dial tcp: connection refused", LastError: "dial tcp: connection refused"},
		{Topic: "orders", UUID: "o2", Payload: []byte{0xff, 0x00, 0x01},
			CreatedAt: now.Add(-10 * time.Minute), FirstError: "dial tcp: connection refused"},
		{Topic: "invoices", UUID: "i1", Payload: []byte("inv"),
			CreatedAt: now.Add(-time.Minute), FirstError: "send timeout", LastError: "send timeout"},
	}
	if err := st.Insert(context.Background(), rows...); err != nil {
		t.Fatal(err)
	}
}

// listAll returns every row of a store queue.
func listAll(t *testing.T, st *sqlstore.Store, queue string) []sqlstore.Message {
	t.Helper()
	rows, err := st.List(context.Background(), sqlstore.Filter{Queue: queue, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func rowUUIDs(rows []sqlstore.Message) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.UUID
	}
	return out
}

func strconvFormat(n int64) string { return strconv.FormatInt(n, 10) }

// newDeadLetterMessage is a consumed message that came from topic.
func newDeadLetterMessage(id, topic string) *message.Message {
	m := message.NewMessage(id, []byte("pay "+id))
	m.Metadata.Set(metadata.OriginalTopic, topic)
	return m
}
