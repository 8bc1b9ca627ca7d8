//go:build !race

package fallback_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/fallback"
)

// Environment of the relay child process started by the crash test.
const (
	envHelper     = "RELIAMQ_FALLBACK_RELAY_CHILD"
	envDialect    = "RELIAMQ_FALLBACK_DIALECT"
	envDSN        = "RELIAMQ_FALLBACK_DSN"
	envTable      = "RELIAMQ_FALLBACK_TABLE"
	envNameServer = "RELIAMQ_FALLBACK_NAMESERVER"
	envExitEmpty  = "RELIAMQ_FALLBACK_EXIT_WHEN_EMPTY"
	crashBatch    = 50
	crashLease    = time.Second
)

// TestHelperProcess is the relay child of the crash test, not a test: it
// relays the table's rows through the RocketMQ adapter to the embedded broker
// of the parent until killed, or until the table is empty when envExitEmpty
// is set.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		t.Skip("relay child process for TestRelay_killed_mid_drain_..., started by that test")
	}
	dialect := sqlstore.Dialect(os.Getenv(envDialect))
	db, err := sqlstoretest.OpenDSN(dialect, os.Getenv(envDSN))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	src, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: dialect, Table: os.Getenv(envTable), LeaseTimeout: crashLease}, nil)
	if err != nil {
		t.Fatalf("store: %v", err)
	}
	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{os.Getenv(envNameServer)},
		SendTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatalf("rocketmq publisher: %v", err)
	}
	defer pub.Close()
	relay, err := fallback.NewRelay(fallback.RelayConfig{Store: src, Publisher: pub, BatchSize: crashBatch,
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

// brokerCount counts, by UUID, the copies of messages the broker stored
// for topic.
func brokerCount(b *rocketmqtest.Broker, topic string) map[string]int {
	count := map[string]int{}
	for _, m := range b.Messages(topic) {
		count[m.Properties[rocketmq.PropertyUUID]]++
	}
	return count
}

func TestRelay_killed_mid_drain_loses_nothing_after_restart(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	for _, be := range backends {
		t.Run(be.Name, func(t *testing.T) {
			b := newBroker(t, rocketmqtest.Config{})
			topic := uniqueName("crash")
			b.CreateTopic(rocketmqtest.TopicConfig{Name: topic})
			dsn := sqlstoretest.DSN(t, be.Dialect)
			db, err := sqlstoretest.OpenDSN(be.Dialect, dsn)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			t.Cleanup(func() { _ = db.Close() })
			src := newStore(t, be, db, nil)
			ids := insertRowsOn(t, src, topic, n)

			child := func(exitWhenEmpty string) (*exec.Cmd, *bytes.Buffer) {
				cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
				cmd.Env = append(os.Environ(), envHelper+"=1", envDialect+"="+string(be.Dialect), envDSN+"="+dsn,
					envTable+"="+src.Table(), envNameServer+"="+b.NameServerAddr(), envExitEmpty+"="+exitWhenEmpty)
				out := &bytes.Buffer{}
				cmd.Stdout, cmd.Stderr = out, out
				if err := cmd.Start(); err != nil {
					t.Fatalf("start child: %v", err)
				}
				return cmd, out
			}

			first, firstOut := child("0")
			deadline := time.Now().Add(30 * time.Second)
			for len(b.Messages(topic)) < n/3 {
				if time.Now().After(deadline) {
					_ = first.Process.Kill()
					_ = first.Wait()
					t.Fatalf("child sent only %d messages in 30s\n%s", len(b.Messages(topic)), firstOut)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := first.Process.Kill(); err != nil { // SIGKILL
				t.Fatalf("kill: %v", err)
			}
			_ = first.Wait()
			// The rows the dead relay claimed are the ones it may have sent
			// without deleting. Its leases run out after crashLease, but the
			// owner stays on each row until another relay claims it, so the
			// count does not depend on how fast this test reads it.
			inFlight := 0
			for _, m := range rowsOf(t, src, "") {
				if m.LeasedBy != "" {
					inFlight++
				}
			}
			sentAtKill := len(b.Messages(topic))

			second, out := child("1")
			waitErr := make(chan error, 1)
			go func() { waitErr <- second.Wait() }()
			select {
			case err := <-waitErr:
				if err != nil {
					t.Fatalf("restarted child: %v\n%s", err, out)
				}
			case <-time.After(45 * time.Second):
				_ = second.Process.Kill()
				<-waitErr
				t.Fatalf("restarted child did not drain the table in 45s\n%s", out)
			}

			count := brokerCount(b, topic)
			_, lost, dupes := tally(ids, count)
			t.Logf("%s: killed after %d of %d at the broker with %d rows leased; lost %d, duplicates %d",
				be.Name, sentAtKill, n, inFlight, lost, dupes)
			if lost != 0 {
				t.Errorf("lost %d messages", lost)
			}
			if dupes > inFlight || dupes > crashBatch {
				t.Errorf("%d duplicates, more than the %d rows in flight at the kill", dupes, inFlight)
			}
			stored := make(map[string]bool, n)
			for _, id := range ids {
				stored[id] = true
			}
			for id := range count {
				if !stored[id] {
					t.Errorf("the broker holds UUID %q that was never stored", id)
				}
			}
			if left := rowsOf(t, src, ""); len(left) != 0 {
				t.Errorf("%d rows left in the table", len(left))
			}
		})
	}
}
