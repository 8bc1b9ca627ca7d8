package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

func TestRun_reports_usage_errors_with_exit_code_2(t *testing.T) {
	dsn, _ := sqliteDB(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown area", []string{"queue", "ls"}, `unknown command "queue"`},
		{"unknown command", []string{"fallback", "rm"}, `unknown command "rm"`},
		{"unknown flag", []string{"fallback", "ls", "--dsn", dsn, "--colour"}, "unknown flag: --colour"},
		{"single-dash long flag", []string{"fallback", "ls", "-dsn", dsn}, "unknown shorthand flag"},
		{"unknown output", []string{"fallback", "ls", "--dsn", dsn, "-o", "yaml"}, `--output "yaml": want table or json`},
		{"json against output", []string{"fallback", "ls", "--dsn", dsn, "-o", "table", "--json"}, "--json contradicts --output table"},
		{"dry run and yes", []string{"fallback", "purge", "--dsn", dsn, "--dry-run", "--yes"}, "exclude each other"},
		{"retry topic and original topic", []string{"dlq", "replay", "--dsn", dsn, "--to-store", "--retry-topic", "x", "--to-original-topic"}, "exclude each other"},
		{"no DSN", []string{"fallback", "ls"}, "--dsn is required"},
		{"unrecognised DSN", []string{"fallback", "ls", "--dsn", "oracle://x"}, "unrecognised DSN"},
		{"malformed MySQL DSN", []string{"fallback", "ls", "--dsn", "mysql://root@tcp(127.0.0.1:3306"}, "malformed: MySQL DSN"},
		{"row id not a number", []string{"fallback", "show", "--dsn", dsn, "abc"}, `"abc" is not a row id`},
		{"show without ids or filter", []string{"fallback", "show", "--dsn", dsn}, "show needs row ids or a filter"},
		{"replay without destination", []string{"fallback", "replay", "--dsn", dsn}, "exactly one destination"},
		{"replay with two destinations", []string{"fallback", "replay", "--dsn", dsn, "--to-store", "--rocketmq", "127.0.0.1:9876"}, "exactly one destination"},
		{"negative rate", []string{"dlq", "replay", "--dsn", dsn, "--to-store", "--rate", "-1"}, "--rate must not be negative"},
		{"bad age", []string{"fallback", "ls", "--dsn", dsn, "--older-than", "yesterday"}, "invalid duration"},
		{"invalid table name", []string{"fallback", "ls", "--dsn", dsn, "--table", "x; DROP TABLE y"}, "not a valid table name"},
		{"purge flag on ls", []string{"fallback", "ls", "--dsn", dsn, "--yes"}, "unknown flag: --yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(t, "", tt.args...).want(t, exitUsage)
			if !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("stderr %q does not contain %q", r.stderr, tt.want)
			}
		})
	}
}

func TestRun_help_prints_usage_and_exits_0(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"help"}, {"-h"}} {
		r := runCmd(t, "", args...).want(t, exitOK)
		for _, s := range []string{"fallback", "dlq", "version", "completion", "Exit codes:", "4  purge not confirmed"} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("%v: usage lacks %q", args, s)
			}
		}
	}
	for _, args := range [][]string{{"fallback"}, {"fallback", "--help"}, {"fallback", "help"}, {"help", "fallback"}} {
		r := runCmd(t, "", args...).want(t, exitOK)
		for _, s := range []string{"ls", "show", "replay", "purge", "Exit codes:"} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("%v: area help lacks %q:\n%s", args, s, r.stdout)
			}
		}
	}
	r := runCmd(t, "", "dlq", "replay", "--help").want(t, exitOK)
	for _, s := range []string{"--rate", "--rocketmq", "--to-store", "--keep-reconsume-times", "--consumer-group",
		"--retry-topic", "--to-original-topic", "--dry-run", "-o, --output"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("dlq replay help lacks %q:\n%s", s, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "--json") {
		t.Errorf("help shows the deprecated --json")
	}
}

func TestRun_missing_database_file_and_missing_table_exit_3(t *testing.T) {
	r := runCmd(t, "", "fallback", "ls", "--dsn", "sqlite://"+t.TempDir()+"/nope.db").want(t, exitNotFound)
	if !strings.Contains(r.stderr, "no SQLite database") {
		t.Fatalf("stderr %q", r.stderr)
	}
	dsn, _ := sqliteDB(t)
	r = runCmd(t, "", "fallback", "ls", "--dsn", dsn, "--table", "relaimq_fallback").want(t, exitNotFound)
	if !strings.Contains(r.stderr, "table relaimq_fallback does not exist") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

func TestLs_filters_by_topic_age_and_error_text(t *testing.T) {
	dsn, db := sqliteDB(t)
	seedFallback(t, newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable))
	tests := []struct {
		name  string
		flags []string
		want  []string
	}{
		{"no filter", nil, []string{"o1", "o2", "i1"}},
		{"topic", []string{"--topic", "orders"}, []string{"o1", "o2"}},
		{"older than", []string{"--older-than", "5m"}, []string{"o1", "o2"}},
		{"older than in days", []string{"--older-than", "1d"}, []string{}},
		{"error text", []string{"--error-contains", "timeout"}, []string{"i1"}},
		{"all filters", []string{"--topic", "orders", "--older-than", "1h", "--error-contains", "refused"}, []string{"o1"}},
		{"limit", []string{"--limit", "2"}, []string{"o1", "o2"}},
		{"known topic excluded by another filter", []string{"--topic", "invoices", "--older-than", "1h"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"fallback", "ls", "--dsn", dsn, "-o", "json"}, tt.flags...)
			rows := runCmd(t, "", args...).want(t, exitOK).rowsJSON(t)
			if diff := cmp.Diff(tt.want, uuids(rows)); diff != "" {
				t.Fatalf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLs_prints_a_readable_table_and_json_with_the_row_state(t *testing.T) {
	dsn, db := sqliteDB(t)
	seedFallback(t, newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable))
	r := runCmd(t, "", "fallback", "ls", "--dsn", dsn).want(t, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "LAST ERROR") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	if !strings.Contains(lines[1], "o1") || !strings.Contains(lines[1], "3h00m") || !strings.Contains(lines[1], "in 59m") ||
		!strings.Contains(lines[1], "connection refused") {
		t.Fatalf("o1 line %q lacks its age, next attempt or error", lines[1])
	}
	if !strings.Contains(lines[2], "due") || r.stderr != "3 rows.\n" {
		t.Fatalf("table:\n%s\nstderr %q", r.stdout, r.stderr)
	}

	rows := runCmd(t, "", "fallback", "ls", "--dsn", dsn, "-o", "json", "--topic", "orders").want(t, exitOK).rowsJSON(t)
	if rows[0].Attempts != 4 || rows[0].AgeSeconds < 3*3600 || rows[0].FirstError != "dial tcp: connection refused" ||
		rows[0].Payload != nil || rows[0].Metadata != nil {
		t.Fatalf("ls row %+v", rows[0])
	}

	r = runCmd(t, "", "fallback", "ls", "--dsn", dsn, "--topic", "refunds", "--older-than", "1h").want(t, exitNotFound)
	if !strings.Contains(r.stderr, `unknown topic "refunds"`) || !strings.Contains(r.stderr, "invoices, orders") {
		t.Fatalf("stderr %q", r.stderr)
	}
	r = runCmd(t, "", "fallback", "ls", "--dsn", dsn, "--queue", "poison").want(t, exitOK)
	if r.stdout != "" || !strings.Contains(r.stderr, "No rows match") {
		t.Fatalf("empty queue: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if r := runCmd(t, "", "fallback", "ls", "--dsn", dsn, "--queue", "poison", "-o", "json").want(t, exitOK); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("empty queue as JSON: %q", r.stdout)
	}
}

func TestLs_table_shows_the_root_cause_and_JSON_every_error_whole(t *testing.T) {
	dsn, db := sqliteDB(t)
	st := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	long := "fallback: relay: sending row 17 to topic orders after 5 attempts: rocketmq: broker unavailable: " +
		"dial tcp 10.0.0.5:10911: connect: connection refused"
	if err := st.Insert(context.Background(),
		sqlstore.Message{Topic: "orders", UUID: "w1", FirstError: "send timeout", LastError: long},
		sqlstore.Message{Topic: "orders", UUID: "w2"}); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "", "fallback", "ls", "--dsn", dsn).want(t, exitOK)
	if !strings.Contains(r.stdout, "…") || !strings.Contains(r.stdout, "connect: connection refused\n") ||
		strings.Contains(r.stdout, "fallback: relay: sending") {
		t.Fatalf("LAST ERROR should show the cause, not the wrappers:\n%s", r.stdout)
	}
	r = runCmd(t, "", "fallback", "ls", "--dsn", dsn, "-o", "json").want(t, exitOK)
	var raw []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw) != 2 {
		t.Fatalf("json %v: %s", err, r.stdout)
	}
	if raw[0]["last_error"] != long || raw[0]["first_error"] != "send timeout" {
		t.Fatalf("errors in JSON: %v", raw[0])
	}
	for _, k := range []string{"first_error", "last_error"} {
		if v, ok := raw[1][k]; !ok || v != "" {
			t.Fatalf("row without errors: %s is %v (present %v), want an empty string", k, v, ok)
		}
	}
	// --json is a deprecated alias of -o json, said so on stderr.
	r = runCmd(t, "", "fallback", "ls", "--dsn", dsn, "--json").want(t, exitOK)
	if !strings.HasPrefix(r.stdout, "[") || !strings.Contains(r.stderr, "deprecated") {
		t.Fatalf("--json: stdout %q stderr %q", r.stdout, r.stderr)
	}
}

func TestDLQ_ls_unknown_topic_and_unknown_consumer_group_both_exit_3(t *testing.T) {
	dsn, db := sqliteDB(t)
	dlq := newStore(t, db, sqlstore.SQLite, "reliamq_dlq")
	deadLetter(t, dlq, "billing", newDeadLetterMessage("d1", "payments"))
	for _, args := range [][]string{{"--topic", "nosuch"}, {"--consumer-group", "nosuch"}, {"--topic", "payments", "--consumer-group", "nosuch"}} {
		r := runCmd(t, "", append([]string{"dlq", "ls", "--dsn", dsn}, args...)...).want(t, exitNotFound)
		if !strings.Contains(r.stderr, `unknown`) || !strings.Contains(r.stderr, `"nosuch"`) {
			t.Fatalf("%v: stderr %q", args, r.stderr)
		}
	}
	// Known names whose rows another filter excludes: no rows, exit 0.
	runCmd(t, "", "dlq", "ls", "--dsn", dsn, "--consumer-group", "billing", "--older-than", "1h").want(t, exitOK)
	runCmd(t, "", "dlq", "ls", "--dsn", dsn, "--topic", "payments", "--older-than", "1h").want(t, exitOK)
}

func TestShow_prints_payload_and_metadata_and_unknown_ids_exit_3(t *testing.T) {
	dsn, db := sqliteDB(t)
	st := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	seedFallback(t, st)
	ids := listAll(t, st, "")
	rows := runCmd(t, "", "fallback", "show", "--dsn", dsn, "-o", "json",
		itoa(ids[1].ID), itoa(ids[0].ID)).want(t, exitOK).rowsJSON(t)
	if len(rows) != 2 || rows[0].UUID != "o1" || rows[1].UUID != "o2" {
		t.Fatalf("rows %+v", rows)
	}
	if *rows[0].Payload != `{"order":1}` || rows[0].PayloadEncoding != "utf-8" || rows[0].Metadata["tenant"] != "a" {
		t.Fatalf("o1 %+v", rows[0])
	}
	if *rows[1].Payload != "/wAB" || rows[1].PayloadEncoding != "base64" {
		t.Fatalf("binary payload shown as %q (%s)", *rows[1].Payload, rows[1].PayloadEncoding)
	}
	r := runCmd(t, "", "fallback", "show", "--dsn", dsn, itoa(ids[0].ID)).want(t, exitOK)
	for _, s := range []string{"UUID:", "o1", "tenant = a", `{"order":1}`, "First error:"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("show output lacks %q:\n%s", s, r.stdout)
		}
	}
	r = runCmd(t, "", "fallback", "show", "--dsn", dsn, "999").want(t, exitNotFound)
	if !strings.Contains(r.stderr, "no row 999") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

func TestPurge_deletes_only_after_confirmation(t *testing.T) {
	dsn, db := sqliteDB(t)
	st := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	seedFallback(t, st)
	base := []string{"fallback", "purge", "--dsn", dsn, "--topic", "orders"}

	r := runCmd(t, "", base...).want(t, exitNotConfirmed)
	if !strings.Contains(r.stderr, "Delete 2 rows") || !strings.Contains(r.stderr, "pass --yes") {
		t.Fatalf("no answer: stderr %q", r.stderr)
	}
	r = runCmd(t, "no\n", base...).want(t, exitNotConfirmed)
	if !strings.Contains(r.stderr, "not confirmed") {
		t.Fatalf("answer no: stderr %q", r.stderr)
	}
	if got := rowUUIDs(listAll(t, st, "")); len(got) != 3 {
		t.Fatalf("rows after refused purges: %v", got)
	}
	r = runCmd(t, "yes\n", base...).want(t, exitOK)
	if !strings.Contains(r.stdout, "Deleted 2 rows") {
		t.Fatalf("stdout %q", r.stdout)
	}
	if diff := cmp.Diff([]string{"i1"}, rowUUIDs(listAll(t, st, ""))); diff != "" {
		t.Fatalf("rows after purge (-want +got):\n%s", diff)
	}
	r = runCmd(t, "", "fallback", "purge", "--dsn", dsn, "--yes", "-o", "json").want(t, exitOK)
	if !strings.Contains(r.stdout, `"deleted":1`) {
		t.Fatalf("stdout %q", r.stdout)
	}
	if got := listAll(t, st, ""); len(got) != 0 {
		t.Fatalf("rows left: %v", rowUUIDs(got))
	}
}

func TestFallbackReplay_to_store_makes_rows_due_now_and_moves_poisoned_rows_back(t *testing.T) {
	dsn, db := sqliteDB(t)
	st := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	seedFallback(t, st)
	ctx := context.Background()
	poisoned := sqlstore.Message{Queue: "poison", Topic: "orders", UUID: "p1", Payload: []byte("p"), Attempts: 9,
		CreatedAt: time.Now().Add(-48 * time.Hour), FirstError: "broker down", LastError: "max_attempts: broker down",
		Metadata: map[string]string{metadata.DeadLetterReason: "max_attempts"}}
	if err := st.Insert(ctx, poisoned); err != nil {
		t.Fatal(err)
	}

	// o1 waits an hour: replaying it in place makes it due now.
	lines, sum := runCmd(t, "", "fallback", "replay", "--dsn", dsn, "--to-store", "--topic", "orders",
		"--older-than", "1h", "-o", "json").want(t, exitOK).replayJSON(t)
	if len(lines) != 1 || lines[0].UUID != "o1" || lines[0].Result != "replayed" || sum["replayed"] != 1 {
		t.Fatalf("replay report %+v %v", lines, sum)
	}
	rows := listAll(t, st, "")
	if rows[0].UUID != "o1" || rows[0].NextAttemptAt.After(time.Now()) || rows[0].Attempts != 4 {
		t.Fatalf("o1 after replay: due %v attempts %d", rows[0].NextAttemptAt, rows[0].Attempts)
	}

	// The poisoned row goes back to the relay's queue with a fresh start.
	r := runCmd(t, "", "fallback", "replay", "--dsn", dsn, "--queue", "poison", "--to-store").want(t, exitOK)
	if !strings.Contains(r.stdout, "replayed  id=") || !strings.Contains(r.stderr, "Replayed 1 of 1 row.") {
		t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if got := listAll(t, st, "poison"); len(got) != 0 {
		t.Fatalf("poison queue still has %v", rowUUIDs(got))
	}
	var back *sqlstore.Message
	for _, m := range listAll(t, st, "") {
		if m.UUID == "p1" {
			back = &m
		}
	}
	if back == nil || back.Attempts != 0 || back.NextAttemptAt.After(time.Now()) || string(back.Payload) != "p" ||
		back.FirstError != "broker down" || back.Topic != "orders" {
		t.Fatalf("moved row %+v", back)
	}

	// The moved row is really sendable by the relay's next claim.
	claimed, err := st.Claim(ctx, sqlstore.ClaimRequest{Queue: "", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range claimed {
		got[m.UUID] = true
	}
	if !got["p1"] || !got["o1"] || !got["o2"] || !got["i1"] {
		t.Fatalf("claimable after replay: %v", got)
	}
}

func TestReplay_is_paced_by_rate_on_the_clock(t *testing.T) {
	dsn, db := sqliteDB(t)
	st := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	seedFallback(t, st)
	fake := clocktest.NewFake(time.Now())
	done := make(chan result, 1)
	go func() {
		done <- runCmdClock(t, fake, "", "fallback", "replay", "--dsn", dsn, "--to-store", "--rate", "2")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// 3 rows at 2/s: the first goes at once, each later one waits 500ms.
	for i := 0; i < 2; i++ {
		if err := fake.BlockUntil(ctx, 1); err != nil {
			t.Fatalf("replay did not wait before message %d: %v", i+2, err)
		}
		if next, ok := fake.NextDeadline(); !ok || next.Sub(fake.Now()) != 500*time.Millisecond {
			t.Fatalf("wait before message %d ends at %v (now %v), want 500ms", i+2, next, fake.Now())
		}
		select {
		case r := <-done:
			t.Fatalf("replay finished before its waits:\n%s", r.stdout)
		default:
		}
		fake.Advance(500 * time.Millisecond)
	}
	r := <-done
	r.want(t, exitOK)
	if !strings.Contains(r.stderr, "Replayed 3 of 3 rows.") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

// deadLetter runs messages through a real redelivery middleware whose
// dead-letter publisher is a sqlstore.Publisher on table reliamq_dlq, so the
// rows are exactly what a service would leave there.
func deadLetter(t *testing.T, dlq *sqlstore.Store, group string, msgs ...*message.Message) {
	t.Helper()
	pub, err := sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: dlq})
	if err != nil {
		t.Fatal(err)
	}
	r, err := redelivery.New(redelivery.Config{ConsumerGroup: group, Handler: "charge", Scheduler: redelivery.NewInMemory(redelivery.InMemoryConfig{}),
		Policy: policy.Policy{MaxAttempts: 1}, Publisher: pub}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	h := r.Middleware(func(*message.Message) ([]*message.Message, error) {
		return nil, errors.New("card declined")
	})
	for _, m := range msgs {
		if _, err := h(m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDLQ_ls_show_and_replay_to_store_of_real_dead_letters(t *testing.T) {
	dsn, db := sqliteDB(t)
	dlq := newStore(t, db, sqlstore.SQLite, "reliamq_dlq")
	fb := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	var msgs []*message.Message
	for _, id := range []string{"d1", "d2"} {
		m := message.NewMessage(id, []byte("pay "+id))
		m.Metadata.Set(metadata.OriginalTopic, "payments")
		m.Metadata.Set("tenant", "a")
		msgs = append(msgs, m)
	}
	deadLetter(t, dlq, "billing", msgs...)
	other := message.NewMessage("x1", []byte("x"))
	other.Metadata.Set(metadata.OriginalTopic, "refunds")
	deadLetter(t, dlq, "refunder", other)

	rows := runCmd(t, "", "dlq", "ls", "--dsn", dsn, "-o", "json", "--topic", "payments").want(t, exitOK).rowsJSON(t)
	if diff := cmp.Diff([]string{"d1", "d2"}, uuids(rows)); diff != "" {
		t.Fatalf("payments dead letters (-want +got):\n%s", diff)
	}
	if r := rows[0]; r.Topic != "payments" || r.StoredTopic != redelivery.DefaultDeadLetterTopic("billing") || r.Attempts != 1 ||
		r.ConsumerGroup != "billing" || r.Handler != "charge" || r.Reason != redelivery.ReasonMaxAttempts || r.LastError == "" {
		t.Fatalf("dead letter row %+v", r)
	}
	if rows := runCmd(t, "", "dlq", "ls", "--dsn", dsn, "-o", "json", "--consumer-group", "refunder").want(t, exitOK).rowsJSON(t); len(rows) != 1 || rows[0].UUID != "x1" {
		t.Fatalf("refunder dead letters %v", uuids(rows))
	}
	r := runCmd(t, "", "dlq", "ls", "--dsn", dsn).want(t, exitOK)
	if !strings.Contains(r.stdout, "REASON") || !strings.Contains(r.stdout, "billing") || !strings.Contains(r.stdout, "card declined") {
		t.Fatalf("dlq table:\n%s", r.stdout)
	}
	runCmd(t, "", "dlq", "ls", "--dsn", dsn, "--topic", redelivery.DefaultDeadLetterTopic("billing")).want(t, exitNotFound)

	retry := redelivery.DefaultRetryTopic("billing", "charge")
	dry := runCmd(t, "", "dlq", "replay", "--dsn", dsn, "--to-store", "--topic", "payments", "--dry-run").want(t, exitOK)
	if strings.Count(dry.stdout, "would replay  id=") != 2 || !strings.Contains(dry.stdout, "topic="+retry) ||
		!strings.Contains(dry.stderr, "nothing sent, written or deleted") {
		t.Fatalf("dry run:\n%s\n%s", dry.stdout, dry.stderr)
	}
	if len(listAll(t, dlq, "")) != 3 || len(listAll(t, fb, "")) != 0 {
		t.Fatal("the dry run changed the tables")
	}
	lines, sum := runCmd(t, "", "dlq", "replay", "--dsn", dsn, "--to-store", "--topic", "payments", "--rate", "0",
		"-o", "json").want(t, exitOK).replayJSON(t)
	if len(lines) != 2 || lines[0].Topic != retry || lines[1].Result != "replayed" || sum["replayed"] != 2 {
		t.Fatalf("report %+v %v", lines, sum)
	}
	if diff := cmp.Diff([]string{"x1"}, rowUUIDs(listAll(t, dlq, ""))); diff != "" {
		t.Fatalf("dlq rows after replay (-want +got):\n%s", diff)
	}
	back := listAll(t, fb, "")
	if diff := cmp.Diff([]string{"d1", "d2"}, rowUUIDs(back)); diff != "" {
		t.Fatalf("fallback rows after replay (-want +got):\n%s", diff)
	}
	for _, m := range back {
		// To billing's retry topic: only the failed group consumes it.
		if m.Topic != retry || m.Metadata["tenant"] != "a" || m.Metadata[metadata.DeadLetterReason] != "" ||
			m.Metadata[metadata.ConsumerGroup] != "" || m.Metadata[metadata.OriginalTopic] != "payments" ||
			m.Metadata[metadata.ReconsumeTimes] != "" || string(m.Payload) != "pay "+m.UUID {
			t.Fatalf("replayed row %+v", m)
		}
	}
}

func TestDLQReplay_stops_at_a_dead_letter_without_original_topic_and_keeps_it(t *testing.T) {
	dsn, db := sqliteDB(t)
	dlq := newStore(t, db, sqlstore.SQLite, "reliamq_dlq")
	fb := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	ctx := context.Background()
	if err := dlq.Insert(ctx,
		sqlstore.Message{Topic: "reliamq_dlq_g", UUID: "good", Metadata: map[string]string{metadata.OriginalTopic: "payments", metadata.RetryTopic: "r"}},
		sqlstore.Message{Topic: "reliamq_dlq_g", UUID: "orphan"},
		sqlstore.Message{Topic: "reliamq_dlq_g", UUID: "later", Metadata: map[string]string{metadata.OriginalTopic: "payments", metadata.RetryTopic: "r"}},
	); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "", "dlq", "replay", "--dsn", dsn, "--to-store", "--rate", "0").want(t, exitRuntime)
	if !strings.Contains(r.stdout, "replayed  id=1 uuid=good") || !strings.Contains(r.stdout, "failed    id=2 uuid=orphan") ||
		!strings.Contains(r.stderr, "Replayed 1 of 3 rows; 1 failed, 1 not tried") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "no original topic") {
		t.Fatalf("stderr %q", r.stderr)
	}
	if diff := cmp.Diff([]string{"orphan", "later"}, rowUUIDs(listAll(t, dlq, ""))); diff != "" {
		t.Fatalf("dlq rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"good"}, rowUUIDs(listAll(t, fb, ""))); diff != "" {
		t.Fatalf("fallback rows (-want +got):\n%s", diff)
	}
}

func TestDLQReplay_of_a_dead_letter_without_retry_topic_names_the_flags_and_keeps_it(t *testing.T) {
	dsn, db := sqliteDB(t)
	dlq := newStore(t, db, sqlstore.SQLite, "reliamq_dlq")
	fb := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	if err := dlq.Insert(context.Background(), sqlstore.Message{Topic: "reliamq_dlq_g", UUID: "native",
		Metadata: map[string]string{metadata.OriginalTopic: "payments", metadata.ConsumerGroup: "g"}}); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "", "dlq", "replay", "--dsn", dsn, "--to-store").want(t, exitRuntime)
	if !strings.Contains(r.stderr, "--retry-topic") || !strings.Contains(r.stderr, "--to-original-topic") {
		t.Fatalf("stderr %q", r.stderr)
	}
	if len(listAll(t, dlq, "")) != 1 || len(listAll(t, fb, "")) != 0 {
		t.Fatal("the dead letter moved")
	}
	runCmd(t, "", "dlq", "replay", "--dsn", dsn, "--to-store", "--retry-topic", "%RETRY%g_payments").want(t, exitOK)
	rows := listAll(t, fb, "")
	if len(rows) != 1 || rows[0].Topic != "%RETRY%g_payments" || rows[0].UUID != "native" {
		t.Fatalf("fallback rows %+v", rows)
	}
}

func itoa(n int64) string { return strconvFormat(n) }

func TestDLQReplay_keeps_the_reconsume_count_only_when_asked(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			dsn, db := sqliteDB(t)
			dlq := newStore(t, db, sqlstore.SQLite, "reliamq_dlq")
			fb := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
			if err := dlq.Insert(context.Background(), sqlstore.Message{Topic: "reliamq_dlq_g", UUID: "d1",
				Metadata: map[string]string{metadata.OriginalTopic: "payments", metadata.RetryTopic: "r", metadata.ReconsumeTimes: "16",
					metadata.DeadLetterReason: redelivery.ReasonMaxAttempts, metadata.LastError: "boom"}}); err != nil {
				t.Fatal(err)
			}
			args := []string{"dlq", "replay", "--dsn", dsn, "--to-store", "--rate", "0"}
			if keep {
				args = append(args, "--keep-reconsume-times")
			}
			runCmd(t, "", args...).want(t, exitOK)
			rows := listAll(t, fb, "")
			if len(rows) != 1 {
				t.Fatalf("fallback rows %v", rowUUIDs(rows))
			}
			md := rows[0].Metadata
			if md[metadata.DeadLetterReason] != "" {
				t.Fatalf("dead-letter reason kept: %v", md)
			}
			if got, want := md[metadata.ReconsumeTimes], map[bool]string{false: "", true: "16"}[keep]; got != want {
				t.Fatalf("reconsume times %q, want %q", got, want)
			}
		})
	}
}

func TestShow_finds_rows_by_id_only_in_the_selected_queue(t *testing.T) {
	dsn, db := sqliteDB(t)
	st := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	if err := st.Insert(context.Background(),
		sqlstore.Message{Topic: "orders", UUID: "relay", FirstError: "refused"},
		sqlstore.Message{Queue: "poison", Topic: "orders", UUID: "poisoned", FirstError: "refused"},
	); err != nil {
		t.Fatal(err)
	}
	all, err := st.List(context.Background(), sqlstore.Filter{AllQueues: true})
	if err != nil || len(all) != 2 {
		t.Fatalf("List = %v, %v", all, err)
	}
	poisonID := strconvFormat(all[1].ID)
	rows := runCmd(t, "", "fallback", "show", "--dsn", dsn, "--queue", "poison", "-o", "json", poisonID).want(t, exitOK).rowsJSON(t)
	if diff := cmp.Diff([]string{"poisoned"}, uuids(rows)); diff != "" {
		t.Fatalf("show --queue poison (-want +got):\n%s", diff)
	}
	r := runCmd(t, "", "fallback", "show", "--dsn", dsn, poisonID).want(t, exitNotFound)
	if !strings.Contains(r.stderr, "no row "+poisonID) {
		t.Fatalf("stderr %q", r.stderr)
	}
}

func TestLs_filters_in_the_database_across_many_pages(t *testing.T) {
	dsn, db := sqliteDB(t)
	st := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	now := time.Now()
	// 1200 recent rows that no filter below selects, then two old timeouts:
	// the matches sit beyond the first pages of the table.
	var rows []sqlstore.Message
	for i := 0; i < 1200; i++ {
		rows = append(rows, sqlstore.Message{Topic: "orders", UUID: fmt.Sprintf("n%d", i), FirstError: "refused"})
	}
	rows = append(rows,
		sqlstore.Message{Topic: "orders", UUID: "old1", CreatedAt: now.Add(-2 * time.Hour), FirstError: "send timeout"},
		sqlstore.Message{Topic: "orders", UUID: "old2", CreatedAt: now.Add(-3 * time.Hour), LastError: "i/o timeout"},
	)
	if err := st.Insert(context.Background(), rows...); err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{
		{"--older-than", "1h"},
		{"--error-contains", "timeout"},
		{"--older-than", "90m", "--error-contains", "timeout"},
	} {
		args := append([]string{"fallback", "ls", "--dsn", dsn, "-o", "json", "--limit", "0"}, flags...)
		got := runCmd(t, "", args...).want(t, exitOK).rowsJSON(t)
		if diff := cmp.Diff([]string{"old1", "old2"}, uuids(got)); diff != "" {
			t.Fatalf("%v (-want +got):\n%s", flags, diff)
		}
	}
}
