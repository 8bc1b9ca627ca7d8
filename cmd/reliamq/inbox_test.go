package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/inbox"
)

func TestInbox_ls_and_purge(t *testing.T) {
	clk := clocktest.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	dsn, db := sqliteDB(t)
	ib, err := sqlstore.NewInbox(sqlstore.InboxConfig{DB: db, Dialect: sqlstore.SQLite, AutoInitialize: true, Clock: clk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, retention := range map[inbox.Key]time.Duration{
		{ConsumerGroup: "billing", Handler: "charge", UUID: "u1"}: time.Hour,
		{ConsumerGroup: "billing", Handler: "charge", UUID: "u2"}: time.Minute,
		{ConsumerGroup: "billing", Handler: "mail", UUID: "u1"}:   time.Minute,
	} {
		e, err := ib.Begin(context.Background(), k, retention)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(10 * time.Minute)

	out := runCmdClock(t, clk, "", "inbox", "ls", "--dsn", dsn).want(t, 0).stdout
	out = strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"billing charge 2 1 10m00s ago", "billing mail 1 1 10m00s ago"} {
		if !strings.Contains(out, want) {
			t.Errorf("inbox ls lacks %q:\n%s", want, out)
		}
	}
	var recs []sqlstore.InboxRecord
	res := runCmdClock(t, clk, "", "inbox", "ls", "--dsn", dsn, "--uuid", "u1", "-o", "json").want(t, 0)
	if err := json.Unmarshal([]byte(res.stdout), &recs); err != nil || len(recs) != 2 {
		t.Fatalf("inbox ls --uuid u1 -o json = %v, %s; want the records of charge and mail", err, res.stdout)
	}

	res = runCmdClock(t, clk, "", "inbox", "purge", "--dsn", dsn, "--batch", "1", "-o", "json").want(t, 0)
	var purged map[string]int
	if err := json.Unmarshal([]byte(res.stdout), &purged); err != nil || purged["purged"] != 2 {
		t.Fatalf("inbox purge = %v, %s; want 2 expired records purged", err, res.stdout)
	}
	groups, err := ib.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Handler != "charge" || groups[0].Records != 1 || groups[0].Expired != 0 {
		t.Fatalf("after the purge: %+v; want one unexpired record of billing/charge", groups)
	}
}

func TestInbox_commands_report_bad_input(t *testing.T) {
	dsn, _ := sqliteDB(t)
	runCmd(t, "", "inbox", "ls", "--dsn", dsn).want(t, exitNotFound)
	runCmd(t, "", "inbox", "ls", "--dsn", dsn, "--table", "x;y").want(t, exitUsage)
	runCmd(t, "", "inbox", "purge", "--dsn", dsn, "--batch", "0").want(t, exitUsage)
	runCmd(t, "", "inbox", "ls", "--dsn", dsn, "-o", "yaml").want(t, exitUsage)
	runCmd(t, "", "inbox", "frob").want(t, exitUsage)
}
