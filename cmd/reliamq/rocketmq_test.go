//go:build !race

// These tests start the RocketMQ client, which has data races of its own.

package main

import (
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// brokerUUIDs returns the Watermill UUIDs stored in a broker topic.
func brokerUUIDs(b *rocketmqtest.Broker, topic string) []string {
	var out []string
	for _, m := range b.Messages(topic) {
		out = append(out, m.Properties[rocketmq.PropertyUUID])
	}
	return out
}

func TestFallbackReplay_to_RocketMQ_sends_each_row_and_deletes_it(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	dsn, db := sqliteDB(t)
	st := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	seedFallback(t, st)

	lines, sum := runCmd(t, "", "fallback", "replay", "--dsn", dsn, "--rocketmq", b.NameServerAddr(),
		"--topic", "orders", "--rate", "50", "-o", "json").want(t, exitOK).replayJSON(t)
	if len(lines) != 2 || lines[0].Result != "replayed" || lines[1].Result != "replayed" || sum["replayed"] != 2 {
		t.Fatalf("report %+v %v", lines, sum)
	}
	if diff := cmp.Diff([]string{"o1", "o2"}, brokerUUIDs(b, "orders")); diff != "" {
		t.Fatalf("broker topic orders (-want +got):\n%s", diff)
	}
	stored := b.Messages("orders")
	if string(stored[0].Body) != `{"order":1}` || stored[0].Properties[rocketmq.PropertyMetadataPrefix+"tenant"] != "a" {
		t.Fatalf("o1 on the broker: body %q properties %v", stored[0].Body, stored[0].Properties)
	}
	if string(stored[1].Body) != "\xff\x00\x01" {
		t.Fatalf("binary payload changed: %q", stored[1].Body)
	}
	if diff := cmp.Diff([]string{"i1"}, rowUUIDs(listAll(t, st, ""))); diff != "" {
		t.Fatalf("rows left (-want +got):\n%s", diff)
	}
}

func TestFallbackReplay_to_RocketMQ_stops_at_the_first_refused_send_and_keeps_the_rows(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	dsn, db := sqliteDB(t)
	st := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	seedFallback(t, st)
	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemError, -1)

	r := runCmd(t, "", "fallback", "replay", "--dsn", dsn, "--rocketmq", b.NameServerAddr(), "--rate", "0").want(t, exitRuntime)
	if !strings.Contains(r.stdout, "failed    id=1 uuid=o1 topic=orders") || !strings.Contains(r.stderr, "Replayed 0 of 3 rows; 1 failed, 2 not tried") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "replay stopped at row 1") {
		t.Fatalf("stderr %q", r.stderr)
	}
	if got := listAll(t, st, ""); len(got) != 3 {
		t.Fatalf("rows after a failed replay: %v", rowUUIDs(got))
	}
	if got := b.Messages("orders"); len(got) != 0 {
		t.Fatalf("broker stored %d messages although every send was refused", len(got))
	}

	// Once the broker takes sends again, the same command drains the rows.
	b.ClearFaults()
	runCmd(t, "", "fallback", "replay", "--dsn", dsn, "--rocketmq", b.NameServerAddr(), "--rate", "0").want(t, exitOK)
	if got := listAll(t, st, ""); len(got) != 0 {
		t.Fatalf("rows left: %v", rowUUIDs(got))
	}
	if got := len(b.Messages("orders")) + len(b.Messages("invoices")); got != 3 {
		t.Fatalf("broker has %d messages, want 3", got)
	}
}

func TestFallbackReplay_to_RocketMQ_reports_a_topic_the_broker_does_not_know(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DisableAutoCreateTopics: true})
	dsn, db := sqliteDB(t)
	st := newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable)
	seedFallback(t, st)
	r := runCmd(t, "", "fallback", "replay", "--dsn", dsn, "--rocketmq", b.NameServerAddr(), "--topic", "invoices",
		"--rate", "0", "--send-timeout", "2s").want(t, exitRuntime)
	if !strings.Contains(r.stdout, "failed    id=3 uuid=i1 topic=invoices") || !strings.Contains(r.stderr, "invoices") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	if got := listAll(t, st, ""); len(got) != 3 {
		t.Fatalf("rows after a failed replay: %v", rowUUIDs(got))
	}
}

func TestDLQReplay_to_RocketMQ_publishes_dead_letters_to_the_failed_groups_retry_topic_only(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	dsn, db := sqliteDB(t)
	dlq := newStore(t, db, sqlstore.SQLite, "reliamq_dlq")
	deadLetter(t, dlq, "billing", newDeadLetterMessage("d1", "payments"), newDeadLetterMessage("d2", "payments"))
	retry := redelivery.DefaultRetryTopic("billing", "charge")

	r := runCmd(t, "", "dlq", "replay", "--dsn", dsn, "--rocketmq", b.NameServerAddr(), "--rate", "0").want(t, exitOK)
	if !strings.Contains(r.stdout, "replayed  id=1 uuid=d1 topic="+retry) || !strings.Contains(r.stderr, "Replayed 2 of 2 rows.") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	if diff := cmp.Diff([]string{"d1", "d2"}, brokerUUIDs(b, retry)); diff != "" {
		t.Fatalf("broker topic %s (-want +got):\n%s", retry, diff)
	}
	if got := brokerUUIDs(b, "payments"); len(got) != 0 {
		t.Fatalf("replay reached every group of payments: %v", got)
	}
	for _, m := range b.Messages(retry) {
		for _, k := range []string{metadata.DeadLetterReason, metadata.ConsumerGroup, metadata.RetryTopic} {
			if _, ok := m.Properties[rocketmq.PropertyMetadataPrefix+k]; ok {
				t.Fatalf("replayed message still carries %s: %v", k, m.Properties)
			}
		}
		if m.Properties[rocketmq.PropertyMetadataPrefix+metadata.OriginalTopic] != "payments" {
			t.Fatalf("replayed message lost its original topic: %v", m.Properties)
		}
	}
	if got := listAll(t, dlq, ""); len(got) != 0 {
		t.Fatalf("dead letters left: %v", rowUUIDs(got))
	}

	// On request, to the original topic (every group).
	deadLetter(t, dlq, "billing", newDeadLetterMessage("d3", "payments"))
	runCmd(t, "", "dlq", "replay", "--dsn", dsn, "--rocketmq", b.NameServerAddr(), "--to-original-topic").want(t, exitOK)
	if diff := cmp.Diff([]string{"d3"}, brokerUUIDs(b, "payments")); diff != "" {
		t.Fatalf("broker topic payments (-want +got):\n%s", diff)
	}
}

func TestReplay_to_an_unreachable_name_server_says_so(t *testing.T) {
	dsn, db := sqliteDB(t)
	seedFallback(t, newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable))
	// A port nobody listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	r := runCmd(t, "", "fallback", "replay", "--dsn", dsn, "--rocketmq", addr, "--timeout", "2s").want(t, exitRuntime)
	if !strings.Contains(r.stderr, "cannot reach the RocketMQ name server "+addr) || strings.Contains(r.stderr, "route info") {
		t.Fatalf("stderr %q", r.stderr)
	}
}
