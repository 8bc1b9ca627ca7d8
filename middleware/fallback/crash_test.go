package fallback_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// Environment of the relay child process started by the crash test.
const (
	envHelper    = "RELIAMQ_FALLBACK_RELAY_CHILD"
	envDialect   = "RELIAMQ_FALLBACK_DIALECT"
	envDSN       = "RELIAMQ_FALLBACK_DSN"
	envSource    = "RELIAMQ_FALLBACK_SOURCE"
	envSink      = "RELIAMQ_FALLBACK_SINK"
	envExitEmpty = "RELIAMQ_FALLBACK_EXIT_WHEN_EMPTY"
	crashBatch   = 50
	crashLease   = time.Second
)

func openDSN(dialect sqlstore.Dialect, dsn string) (*sql.DB, error) {
	switch dialect {
	case sqlstore.Postgres:
		return sql.Open("pgx", dsn)
	case sqlstore.MySQL:
		return sql.Open("mysql", dsn)
	default:
		return sqlstore.OpenSQLite(dsn)
	}
}

// TestHelperProcess is the relay child of the crash test, not a test: it
// runs a relay from the source table into the sink table (a sqlstore
// Publisher standing in for a broker) until killed, or until the source is
// empty when envExitEmpty is set.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("relay child process for TestRelay_killed_mid_drain_..., started by that test")
	}
	dialect := sqlstore.Dialect(os.Getenv(envDialect))
	db, err := openDSN(dialect, os.Getenv(envDSN))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	src, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: dialect, Table: os.Getenv(envSource), LeaseTimeout: crashLease}, nil)
	if err != nil {
		t.Fatalf("source store: %v", err)
	}
	sinkStore, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: dialect, Table: os.Getenv(envSink)}, nil)
	if err != nil {
		t.Fatalf("sink store: %v", err)
	}
	sink, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: sinkStore}, nil)
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	relay, err := fallback.NewRelay(fallback.RelayConfig{Store: src, Publisher: sink, BatchSize: crashBatch,
		PollInterval: 10 * time.Millisecond}, nil)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	if os.Getenv(envExitEmpty) == "1" {
		for {
			s, err := src.Stats(context.Background(), "")
			if err == nil && s.Backlog == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestRelay_killed_mid_drain_loses_nothing_after_restart(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			var dsn string
			switch be.dialect {
			case sqlstore.Postgres:
				dsn = servicetest.Postgres.Addr(t)
			case sqlstore.MySQL:
				dsn = servicetest.MySQL.Addr(t)
			default:
				dsn = filepath.Join(t.TempDir(), "crash.db")
			}
			db, err := openDSN(be.dialect, dsn)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			t.Cleanup(func() { _ = db.Close() })
			src := newStore(t, be, db, nil)
			sink := newStore(t, be, db, nil)
			ids := insertRows(t, src, "", n)

			child := func(exitWhenEmpty bool) (*exec.Cmd, *bytes.Buffer) {
				cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(), envHelper+"=1", envDialect+"="+string(be.dialect), envDSN+"="+dsn,
					envSource+"="+src.Table(), envSink+"="+sink.Table(), envExitEmpty+"="+boolEnv(exitWhenEmpty))
				out := &bytes.Buffer{}
				cmd.Stdout, cmd.Stderr = out, out
				if err := cmd.Start(); err != nil {
					t.Fatalf("start child: %v", err)
				}
				return cmd, out
			}

			first, _ := child(false)
			deadline := time.Now().Add(30 * time.Second)
			for sinkCount(t, sink) < n/3 {
				if time.Now().After(deadline) {
					_ = first.Process.Kill()
					t.Fatalf("child sent only %d rows in 30s", sinkCount(t, sink))
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := first.Process.Kill(); err != nil { // SIGKILL
				t.Fatalf("kill: %v", err)
			}
			_ = first.Wait()
			sentAtKill := sinkCount(t, sink)
			st, err := src.Stats(context.Background(), "")
			if err != nil {
				t.Fatalf("stats: %v", err)
			}
			inFlight := st.Leased

			second, out := child(true)
			waitErr := make(chan error, 1)
			go func() { waitErr <- second.Wait() }()
			select {
			case err := <-waitErr:
				if err != nil {
					t.Fatalf("restarted child: %v\n%s", err, out)
				}
			case <-time.After(45 * time.Second):
				_ = second.Process.Kill()
				t.Fatalf("restarted child did not drain the table in 45s")
			}

			count := map[string]int{}
			for _, m := range rowsOf(t, sink, "") {
				count[m.UUID]++
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
			t.Logf("%s: killed after %d of %d sent with %d rows leased; lost %d, duplicates %d",
				be.name, sentAtKill, n, inFlight, lost, dupes)
			if lost != 0 {
				t.Errorf("lost %d messages", lost)
			}
			if int64(dupes) > inFlight || dupes > crashBatch {
				t.Errorf("%d duplicates, more than the %d rows in flight at the kill", dupes, inFlight)
			}
			if left := rowsOf(t, src, ""); len(left) != 0 {
				t.Errorf("%d rows left in the source table", len(left))
			}
		})
	}
}

func sinkCount(t *testing.T, sink *sqlstore.Store) int {
	t.Helper()
	s, err := sink.Stats(context.Background(), "")
	if err != nil {
		t.Fatalf("sink stats: %v", err)
	}
	return int(s.Backlog)
}

func boolEnv(b bool) string { return strconv.Itoa(map[bool]int{false: 0, true: 1}[b]) }
