//go:build !race

// The story starts the RocketMQ client, whose own code has data races: these
// tests run without the race detector.

package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

func TestMain(m *testing.M) {
	// The client's leftovers are ignored; the story's own goroutines (pool,
	// relay, router, HTTP server) must all be gone.
	rocketmqtest.VerifyNoLeaks(m)
}

// checkSummary asserts what the demo promises: every comment accepted by the
// API is either counted by the consumer or in the dead-letter topic.
func checkSummary(t *testing.T, s Summary, out string) {
	t.Helper()
	published := len(normalComments) + len(outageComments) + 2
	if s.Published != published {
		t.Errorf("published %d, want %d", s.Published, published)
	}
	if s.Lost != 0 {
		t.Errorf("lost %d (%v), want 0", s.Lost, s.LostUUIDs)
	}
	if s.DeadLettered != 1 {
		t.Errorf("dead-lettered %d, want 1 (the poison comment)", s.DeadLettered)
	}
	if s.Delivered != published-1 {
		t.Errorf("delivered %d, want %d", s.Delivered, published-1)
	}
	if s.StoredInFallback != len(outageComments) {
		t.Errorf("fallback table held %d rows during the outage, want %d", s.StoredInFallback, len(outageComments))
	}
	if s.RelaySent < len(outageComments) {
		t.Errorf("relay resent %d rows, want at least %d", s.RelaySent, len(outageComments))
	}
	// The seed's policy: 3 attempts, so 2 retries per message while the broker is down.
	if want := 2 * len(outageComments); s.SendRetries != want {
		t.Errorf("send retries %d, want %d", s.SendRetries, want)
	}
	if diff := cmp.Diff([]int{0, 1, 2, 3}, s.Reconsumes); diff != "" {
		t.Errorf("reconsume counts of the dead-lettered comment (-want +got):\n%s", diff)
	}
	for _, line := range []string{"lost           0", "dead-lettered  1", "holds 5 rows", "holds 0 rows",
		"retry 3 in 1m0s (RocketMQ delay level 5", "dead-lettered to reliamq_dlq_comment_counter after 4 attempts (reason max_attempts)"} {
		if !strings.Contains(out, line) {
			t.Errorf("narration lacks %q", line)
		}
	}
	checkOrder(t, out)
	checkMetrics(t, s)
	if t.Failed() {
		t.Logf("narration:\n%s", out)
	}
}

// checkMetrics compares the /metrics scrapes the story took with what the
// story did, counted independently by the narration hooks and the ledger.
func checkMetrics(t *testing.T, s Summary) {
	t.Helper()
	o, f := s.MetricsAfterOutage, s.MetricsAfterFailures
	if o == nil || f == nil {
		t.Fatal("the story did not scrape /metrics")
	}
	stored := `outcome="stored"`
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"publish_retries_total after the outage", o.Sum("reliamq_publish_retries_total"), float64(s.SendRetries)},
		{"fallback_writes_total{stored} after the outage", o.Sum("reliamq_fallback_writes_total", stored), float64(s.StoredInFallback)},
		{"fallback_backlog once drained", o.Sum("reliamq_fallback_backlog"), 0},
		{"relay_sends_total{ok} after the outage", o.Sum("reliamq_relay_sends_total", `outcome="ok"`), float64(s.RelaySent)},
		{"redelivery_scheduled_total (flaky 2 + poison 3)", f.Sum("reliamq_redelivery_scheduled_total"), 5},
		{"redelivery_scheduled_total{attempt=3}", f.Sum("reliamq_redelivery_scheduled_total", `attempt="3"`), 1},
		{"dead_lettered_total", f.Sum("reliamq_dead_lettered_total", `consumer_group="comment_counter"`), float64(s.DeadLettered)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %g, want %g", c.name, c.got, c.want)
		}
	}
	// Every attempt of every outage message failed at the broker publisher:
	// 3 attempts each (a message whose later attempt succeeded adds more).
	if got, want := o.Sum("reliamq_publish_attempts_total", `outcome="error"`), float64(3*s.StoredInFallback); got < want {
		t.Errorf("publish_attempts_total{error} = %g, want at least %g", got, want)
	}
}

func TestRunStory_on_SQLite_loses_nothing_and_dead_letters_the_poison_comment(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := RunStory(ctx, StoryConfig{Out: &out})
	if err != nil {
		t.Fatalf("RunStory: %v\n%s", err, out.String())
	}
	checkSummary(t, s, out.String())
}

func TestRunStory_on_PostgreSQL_loses_nothing(t *testing.T) {
	dsn := servicetest.Postgres.Addr(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	table := sqlstoretest.UniqueName("demo_story")
	sqlstoretest.DropAtCleanup(t, sqlstoretest.Open(t, sqlstore.Postgres), table)
	s, err := RunStory(ctx, StoryConfig{Out: &out, DSN: dsn, Table: table})
	if err != nil {
		t.Fatalf("RunStory: %v\n%s", err, out.String())
	}
	checkSummary(t, s, out.String())
}

func TestCommentAPI_accepts_comments_rejects_bad_bodies_and_reports_stats(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{LongPollHold: 200 * time.Millisecond})
	st := sqlstoretest.NewStore(t, sqlstore.SQLite, sqlstore.Config{})
	pub, err := NewPublishSide(PublishConfig{NameServers: []string{b.NameServerAddr()}, Store: st,
		SendPolicy: policy.Policy{MaxAttempts: 1}, RelayPollInterval: 100 * time.Millisecond, Events: &Events{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(pub)
	defer func() {
		srv.Close()
		if err := pub.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if got := len(b.Messages(TopicCommentPublished)); got != 1 {
			t.Errorf("broker holds %d comment events, want 1", got)
		}
	}()

	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{name: "a comment", body: `{"noteId": 1, "content": "hello"}`, want: http.StatusAccepted},
		{name: "not JSON", body: `hello`, want: http.StatusBadRequest},
		{name: "no content", body: `{"noteId": 1}`, want: http.StatusBadRequest},
	} {
		resp, err := http.Post(srv.URL+"/comments", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	resp, err := http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	for _, key := range []string{`"async"`, `"fallback"`, `"relay"`} {
		if !strings.Contains(body.String(), key) {
			t.Errorf("/stats lacks %s: %s", key, body.String())
		}
	}
}

// postLine matches the POST line of an accepted comment and its event id.
var postLine = regexp.MustCompile(`POST      note \d+ .* -> 202 in .*, event (\w+)$`)

// relayFailLine matches one failed relay send; outageLine the relay's
// conclusion that the broker is down.
var (
	relayFailLine = regexp.MustCompile(`relay     \w+ row \d+: resend \d+ failed`)
	outageLine    = regexp.MustCompile(`relay     (\d+) sends failed in a row`)
)

// checkOrder asserts that the narration tells causes before effects: no line
// about an event before the POST that created it, and the relay's outage
// line after the failures it counts.
func checkOrder(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	posted := map[string]int{}
	for i, l := range lines {
		if m := postLine.FindStringSubmatch(l); m != nil {
			posted[m[1]] = i
		}
	}
	if len(posted) == 0 {
		t.Fatal("no POST lines in the narration")
	}
	for i, l := range lines {
		if strings.Contains(l, "POST ") {
			continue
		}
		for id, at := range posted {
			if strings.Contains(l, " "+id+" ") || strings.Contains(l, " "+id+":") {
				if i < at {
					t.Errorf("line %d %q comes before the POST of %s (line %d)", i, l, id, at)
				}
			}
		}
	}
	fails := 0
	for i, l := range lines {
		if relayFailLine.MatchString(l) {
			fails++
		}
		if m := outageLine.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			if fails < n {
				t.Errorf("line %d says %d sends failed in a row after only %d failure lines", i, n, fails)
			}
		}
	}
}
