//go:build !race

// This test starts the RocketMQ client (in the built command), next to the
// embedded broker.

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/journal"
	"github.com/reliamq/reliamq/pkg/policy"
)

// A journal is a table of the SQL store like the fallback table: the
// command lists, moves and replays its rows with --table and --queue, the
// built binary on the journal's SQLite file.
func TestBinary_lists_and_replays_a_journal_left_by_a_stopped_publisher(t *testing.T) {
	bin := buildBinary(t)

	// A journal whose broker was down: three rows wait in queue "journal",
	// and one the broker refused for good sits in "journal/poison".
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, Table: "reliamq_journal", AutoInitialize: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	refused := watermill.NewUUID()
	down := &fakepub.Publisher{Func: func(_ string, msgs []*message.Message) error {
		if msgs[0].UUID == refused {
			return policy.Permanent(errors.New("no permission"))
		}
		return errors.New("broker down")
	}}
	j, err := journal.New(down, journal.Config{Store: st, CloseTimeout: 200 * time.Millisecond,
		Relay: fallback.RelayConfig{OutageBackoff: policy.Fixed(time.Hour)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var waiting []string
	for i := range 4 {
		m := message.NewMessage(watermill.NewUUID(), []byte(`{"n":1}`))
		if i == 0 {
			m.UUID = refused
		} else {
			waiting = append(waiting, m.UUID)
		}
		if err := j.Publish("orders", m); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, _ := j.Stats(t.Context())
		if s.Relay.Poisoned == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refused message was not poisoned: %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	dsn := "sqlite://" + path
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(bin, args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("reliamq %v: %v\n%s\n%s", args, err, out.String(), errOut.String())
		}
		return out.Bytes()
	}
	list := func(queue string) []string {
		t.Helper()
		var rows []struct {
			UUID string `json:"uuid"`
		}
		out := run("fallback", "ls", "--dsn", dsn, "--table", "reliamq_journal", "--queue", queue, "-o", "json")
		if err := json.Unmarshal(out, &rows); err != nil {
			t.Fatalf("ls output: %v\n%s", err, out)
		}
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.UUID)
		}
		sort.Strings(ids)
		return ids
	}
	sorted := func(ids ...string) []string {
		out := append([]string(nil), ids...)
		sort.Strings(out)
		return out
	}
	if diff := cmp.Diff(sorted(waiting...), list(journal.DefaultQueue)); diff != "" {
		t.Fatalf("journal rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{refused}, list(journal.DefaultQueue+"/poison")); diff != "" {
		t.Fatalf("poisoned rows (-want +got):\n%s", diff)
	}

	// The poisoned row goes back into the journal, for its relay.
	run("fallback", "replay", "--dsn", dsn, "--table", "reliamq_journal", "--queue", journal.DefaultQueue+"/poison",
		"--to-store", "--to-queue", journal.DefaultQueue)
	if got := list(journal.DefaultQueue + "/poison"); len(got) != 0 {
		t.Fatalf("poison queue after the move: %v", got)
	}
	// Every row of the journal, sent to the broker by the command.
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	run("fallback", "replay", "--dsn", dsn, "--table", "reliamq_journal", "--queue", journal.DefaultQueue,
		"--rocketmq", b.NameServerAddr(), "--rate", "0")
	if got := list(journal.DefaultQueue); len(got) != 0 {
		t.Fatalf("journal rows after the replay: %v", got)
	}
	if diff := cmp.Diff(sorted(append(waiting, refused)...), sorted(brokerUUIDs(b, "orders")...)); diff != "" {
		t.Fatalf("broker topic orders (-want +got):\n%s", diff)
	}
}
