//go:build !race

package inbox_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/inbox"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// Environment of the consumer child process started by the crash test.
const (
	envChild        = "RELIAMQ_INBOX_CRASH_CHILD"
	envNameServer   = "RELIAMQ_INBOX_NAMESERVER"
	envDSN          = "RELIAMQ_INBOX_DSN"
	envTopic        = "RELIAMQ_INBOX_TOPIC"
	envGroup        = "RELIAMQ_INBOX_GROUP"
	envDLQ          = "RELIAMQ_INBOX_DLQ"
	envStoreTable   = "RELIAMQ_INBOX_STORE_TABLE"
	envInboxTable   = "RELIAMQ_INBOX_INBOX_TABLE"
	envEffectsTable = "RELIAMQ_INBOX_EFFECTS_TABLE"
	envNoInbox      = "RELIAMQ_INBOX_WITHOUT_INBOX"
	crashMessages   = 200
	crashAttempts   = 3
)

// crashKind says how the handler treats message i: flaky ones fail their
// first two attempts, poison ones every attempt (dead-lettered after the
// third), the others succeed.
func crashKind(i int) string {
	switch {
	case i%10 == 3:
		return "poison"
	case i%4 == 1:
		return "flaky"
	}
	return "good"
}

// TestHelperProcess is the consumer child of the crash test, not a test: a
// router handler under redelivery (Durable, PostgreSQL) and the inbox
// (PostgreSQL), consuming the parent's embedded RocketMQ broker and writing
// one effect row per run in the inbox's transaction, until killed or
// interrupted.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("consumer child process of TestInbox_consumer_killed_mid_run_..., started by that test")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	db, err := sqlstoretest.OpenDSN(sqlstore.Postgres, os.Getenv(envDSN))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.Postgres, Table: os.Getenv(envStoreTable), LeaseTimeout: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ibs, err := sqlstore.NewInbox(sqlstore.InboxConfig{DB: db, Dialect: sqlstore.Postgres, Table: os.Getenv(envInboxTable)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ns := []string{os.Getenv(envNameServer)}
	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: ns}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	group := os.Getenv(envGroup)
	sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: ns, ConsumerGroup: group, CloseTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := redelivery.New(redelivery.Config{ConsumerGroup: group, Handler: "h",
		Scheduler: redelivery.NewDurable(redelivery.DurableConfig{Store: st, PollInterval: 50 * time.Millisecond}),
		Publisher: pub, DeadLetterTopic: os.Getenv(envDLQ),
		Policy: policy.Policy{MaxAttempts: crashAttempts, Backoff: policy.Fixed(200 * time.Millisecond)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := inbox.New(inbox.Config{ConsumerGroup: group, Handler: "h", Store: ibs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ib.Close()
	insert := "INSERT INTO " + os.Getenv(envEffectsTable) + " (uuid) VALUES ($1)"
	withInbox := os.Getenv(envNoInbox) != "1"
	handler := func(msg *message.Message) error {
		time.Sleep(5 * time.Millisecond) // keep messages in flight when the parent kills us
		attempt, _ := strconv.Atoi(msg.Metadata.Get(metadata.ReconsumeTimes))
		switch kind := string(msg.Payload); {
		case kind == "poison", kind == "flaky" && attempt < 2:
			return fmt.Errorf("%s message fails attempt %d", kind, attempt+1)
		}
		if withInbox {
			_, err := inbox.Tx(msg.Context()).ExecContext(msg.Context(), insert, msg.UUID)
			return err
		}
		_, err := db.ExecContext(msg.Context(), insert, msg.UUID) // what every consumer does today
		return err
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := handler
	if withInbox {
		h = ib.ConsumerHandler(handler)
	}
	if _, err := rd.AddConsumerHandler(router, os.Getenv(envTopic), sub, h); err != nil {
		t.Fatal(err)
	}
	if err := router.Run(ctx); err != nil {
		t.Fatal(err)
	}
	_ = rd.Close()
	s := ib.Stats()
	fmt.Printf("%s %d %d %d\n", statsLine, s.Processed, s.Duplicates, s.Failed)
}

// statsLine starts the line where a child that was stopped (not killed)
// prints its inbox counters: processed, duplicates, failed.
const statsLine = "INBOX-STATS"

// The consumer-crash scenario of the issue ("consumers act once"): without
// an inbox, a consumer SIGKILLed during Durable redelivery handled 44 of 200
// messages twice. Here a child process consumes 200 messages (good ones,
// flaky ones failing twice, poison ones dead-lettered after three attempts)
// with redelivery and the inbox on PostgreSQL, its handler writing an effect
// row in the inbox's transaction; the parent SIGKILLs it mid-run, starts it
// again, and counts effects by UUID at the end: 0 duplicated, 0 lost, and
// every poison message dead-lettered with no effect.
func TestInbox_consumer_killed_mid_run_has_no_duplicate_and_no_lost_effect(t *testing.T) {
	c := runCrash(t, true)
	if c.duplicated != 0 || c.lost != 0 || c.poisonWithEffect != 0 {
		t.Fatalf("duplicated %d, lost %d, poison with an effect %d; want 0, 0, 0", c.duplicated, c.lost, c.poisonWithEffect)
	}
	// The kill must have made the broker redeliver messages the first child
	// had processed (its offsets were not all committed): otherwise this
	// test did not exercise what it claims to.
	if c.skipped == 0 {
		t.Fatalf("the restarted child skipped no copy of a processed message (processed %d); the kill caused no redelivery", c.processed)
	}
}

// The same run without the inbox (the handler writes its effect on its own)
// duplicates effects: this is what the inbox removes, and what shows that
// the counting above can fail.
func TestInbox_the_same_kill_without_the_inbox_duplicates_effects(t *testing.T) {
	c := runCrash(t, false)
	if c.duplicated == 0 {
		t.Fatalf("no effect duplicated without the inbox; the kill caused no redelivery of a processed message")
	}
	if c.lost != 0 {
		t.Fatalf("lost %d effects; redelivery loses none, with or without the inbox", c.lost)
	}
}

// crashCounts is what runCrash counted by UUID.
type crashCounts struct {
	duplicated, lost, poisonWithEffect int
	processed, skipped, failed         int // the restarted child's inbox counters
}

func runCrash(t *testing.T, withInbox bool) crashCounts {
	dsn := servicetest.Postgres.Addr(t)
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{LongPollHold: 200 * time.Millisecond})
	db := sqlstoretest.Open(t, sqlstore.Postgres)
	st := sqlstoretest.NewStore(t, sqlstore.Postgres, sqlstore.Config{DB: db})
	ibs := newSQLStore(t, sqlstore.Postgres, db, nil)
	fx := newEffects(t, db, sqlstore.Postgres)
	topic, group, dlq := sqlstoretest.UniqueName("crash"), sqlstoretest.UniqueName("g"), sqlstoretest.UniqueName("dlq")

	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{b.NameServerAddr()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	kinds := map[string]string{}
	for i := range crashMessages {
		m := message.NewMessage(watermill.NewUUID(), []byte(crashKind(i)))
		kinds[m.UUID] = crashKind(i)
		if err := pub.Publish(topic, m); err != nil {
			t.Fatal(err)
		}
	}
	// The dead-letter topic exists before the first dead letter, so that
	// its messages can be read back from the broker.
	if err := pub.Publish(dlq, message.NewMessage("dlq-probe", []byte("probe"))); err != nil {
		t.Fatal(err)
	}

	start := func() (*exec.Cmd, *strings.Builder) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
		cmd.Env = append(os.Environ(), envChild+"=1", envNameServer+"="+b.NameServerAddr(), envDSN+"="+dsn,
			envTopic+"="+topic, envGroup+"="+group, envDLQ+"="+dlq, envStoreTable+"="+st.Table(),
			envInboxTable+"="+ibs.sql.Table(), envEffectsTable+"="+fx.table)
		if !withInbox {
			cmd.Env = append(cmd.Env, envNoInbox+"=1")
		}
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			if t.Failed() {
				t.Logf("child output:\n%s", out.String())
			}
		})
		return cmd, &out
	}
	effectRows := func() int {
		n := 0
		for _, c := range fx.byUUID(t) {
			n += c
		}
		return n
	}
	deadLettered := func() map[string]int {
		out := map[string]int{}
		for _, m := range b.Messages(dlq) {
			if u := m.Properties[rocketmq.PropertyUUID]; u != "dlq-probe" {
				out[u]++
			}
		}
		return out
	}
	var wantEffects, wantDead int
	for _, k := range kinds {
		if k == "poison" {
			wantDead++
		} else {
			wantEffects++
		}
	}

	child, _ := start()
	waitUntil(t, 2*time.Minute, "a third of the effects before the kill", func() bool { return effectRows() >= wantEffects/3 })
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	atKill := effectRows()

	child, out := start()
	waitUntil(t, 3*time.Minute, "every effect and every dead letter", func() bool {
		return len(fx.byUUID(t)) >= wantEffects && len(deadLettered()) >= wantDead
	})
	// Let stragglers (leases of the killed child's claims, late
	// redeliveries) arrive before counting: 3 s without change.
	last, stable := effectRows(), time.Now()
	for time.Since(stable) < 3*time.Second {
		time.Sleep(200 * time.Millisecond)
		if n := effectRows(); n != last {
			last, stable = n, time.Now()
		}
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := child.Wait(); err != nil {
		t.Errorf("second child: %v", err)
	}

	var processed, skipped, failed int
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, statsLine) {
			_, _ = fmt.Sscan(strings.TrimPrefix(line, statsLine), &processed, &skipped, &failed)
		}
	}
	effectsBy, dead := fx.byUUID(t), deadLettered()
	var duplicated, lost, poisonWithEffect, deadCopies int
	for u, k := range kinds {
		switch {
		case k == "poison":
			if effectsBy[u] != 0 {
				poisonWithEffect++
			}
			if dead[u] == 0 {
				lost++
			}
			deadCopies += dead[u]
		case effectsBy[u] == 0:
			lost++
		case effectsBy[u] > 1:
			duplicated += effectsBy[u] - 1
		}
	}
	for u := range dead {
		if kinds[u] != "poison" {
			t.Errorf("%s (%s) was dead-lettered", u, kinds[u])
		}
	}
	how := "with the inbox"
	if !withInbox {
		how = "without the inbox"
	}
	t.Logf("%s: %d sent (%d to take effect, %d poison): killed after %d effects; effects: %d UUIDs, %d duplicated, %d lost; dead letters: %d UUIDs in %d copies; poison with an effect: %d; the restarted child's inbox: %d processed, %d copies of processed messages acknowledged without running, %d failed runs",
		how, crashMessages, wantEffects, wantDead, atKill, len(effectsBy), duplicated, lost, len(dead), deadCopies, poisonWithEffect, processed, skipped, failed)
	return crashCounts{duplicated: duplicated, lost: lost, poisonWithEffect: poisonWithEffect,
		processed: processed, skipped: skipped, failed: failed}
}
