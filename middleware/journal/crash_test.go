//go:build !race

package journal_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/middleware/journal"
)

// Environment of the publisher child process started by the crash test.
const (
	envChild      = "RELIAMQ_JOURNAL_CHILD"
	envPath       = "RELIAMQ_JOURNAL_PATH"
	envNameServer = "RELIAMQ_JOURNAL_NAMESERVER"
	envTopic      = "RELIAMQ_JOURNAL_TOPIC"
	envQuota      = "RELIAMQ_JOURNAL_QUOTA"
	ackPrefix     = "ACK "
	childWorkers  = 8
)

// TestHelperProcess is the publisher child of the crash test, not a test:
// childWorkers goroutines publish quota messages through a journal on the
// SQLite file of the parent to the parent's embedded broker, and print
// "ACK <uuid>" for each only after Publish returned nil. Killed by the
// parent, or, once the quota is published, it closes the journal (which
// waits for it to empty) and exits.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("publisher child process of TestJournal_SIGKILL_..., started by that test")
	}
	quota, err := strconv.Atoi(os.Getenv(envQuota))
	if err != nil {
		t.Fatalf("quota: %v", err)
	}
	st := openJournal(t, os.Getenv(envPath))
	broker, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{os.Getenv(envNameServer)},
		SendTimeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatalf("rocketmq publisher: %v", err)
	}
	j, err := journal.New(broker, journal.Config{Store: st, CloseTimeout: 2 * time.Minute}, nil)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	topic := os.Getenv(envTopic)
	var next atomic.Int64
	var mu sync.Mutex
	out := bufio.NewWriterSize(os.Stdout, 64) // one line per write, flushed at once
	var wg sync.WaitGroup
	for range childWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(quota) {
				msg := message.NewMessage(watermill.NewUUID(), []byte("crash test"))
				if err := j.Publish(topic, msg); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				mu.Lock()
				fmt.Fprintln(out, ackPrefix+msg.UUID)
				_ = out.Flush()
				mu.Unlock()
				time.Sleep(2 * time.Millisecond) // ~3,000 msg/s: kills land while it publishes
			}
		}()
	}
	wg.Wait()
	if err := j.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// The goal of the journal: nothing Publish acknowledged is lost when the
// process is killed. A child publishes through the journal with more
// messages waiting than the broker takes (every send is slowed down, and in
// every other round the broker is stopped); the parent SIGKILLs it at a
// random moment, several times, restarts it (the restart drains what the dead
// run left), and counts by UUID at the broker at the end.
func TestJournal_SIGKILL_of_the_publisher_loses_no_acknowledged_message(t *testing.T) {
	total, kills := 10000, 6
	if testing.Short() {
		total, kills = 3000, 3
	}
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	// Slow: each send waits 40 ms, so the relays send about 1,000 msg/s
	// and the journal holds thousands of rows.
	b.SetLatency(rocketmqtest.CodeSendMessage, 40*time.Millisecond)
	b.SetLatency(rocketmqtest.CodeSendMessageV2, 40*time.Millisecond)
	topic := fmt.Sprintf("journal_crash_%d", time.Now().UnixNano())
	b.CreateTopic(rocketmqtest.TopicConfig{Name: topic})
	path := filepath.Join(t.TempDir(), "journal.db")

	acked := map[string]bool{}
	start := func(quota int) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), envChild+"=1", envPath+"="+path, envNameServer+"="+b.NameServerAddr(),
			envTopic+"="+topic, envQuota+"="+strconv.Itoa(quota))
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			t.Fatalf("start child: %v", err)
		}
		return cmd, &out, &errOut
	}
	collect := func(out *bytes.Buffer) int {
		n := 0
		for _, line := range strings.Split(out.String(), "\n") {
			if id, ok := strings.CutPrefix(line, ackPrefix); ok && len(id) == 36 {
				if !acked[id] {
					n++
				}
				acked[id] = true
			}
		}
		return n
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for round := range kills {
		cmd, out, _ := start(total - len(acked))
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		stopped := round%2 == 1
		if stopped {
			// Broker down: the relays fail, back off and probe while the
			// child keeps journaling.
			if err := b.Stop(); err != nil {
				t.Fatalf("stop broker: %v", err)
			}
			time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatalf("kill: %v", err)
		}
		_ = cmd.Wait()
		if stopped {
			if err := b.Restart(); err != nil {
				t.Fatalf("restart broker: %v", err)
			}
		}
		n := collect(out)
		backlog := journalBacklog(t, path)
		t.Logf("round %d: killed after %d acknowledged (%d in all), broker stopped: %v, %d rows in the journal",
			round+1, n, len(acked), stopped, backlog)
	}
	// The last run publishes the rest and closes, which waits for the
	// journal to empty.
	cmd, out, errOut := start(total - len(acked))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("last child: %v\n%s\n%s", err, tail(out.String()), errOut.String())
		}
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the last child did not finish in 3 minutes\n%s", tail(out.String()))
	}
	collect(out)
	if left := journalBacklog(t, path); left != 0 {
		t.Errorf("%d rows left in the journal", left)
	}

	count := map[string]int{}
	for _, m := range b.Messages(topic) {
		count[m.Properties[rocketmq.PropertyUUID]]++
	}
	lost, dupes, unacked := 0, 0, 0
	for id := range acked {
		if count[id] == 0 {
			lost++
		}
	}
	for id, c := range count {
		dupes += c - 1
		if !acked[id] {
			unacked++ // committed, killed before its ACK line
		}
	}
	t.Logf("acknowledged %d, delivered %d distinct (%d of them committed but killed before the ACK), duplicates %d, lost %d, after %d SIGKILLs",
		len(acked), len(count), unacked, dupes, lost, kills)
	if len(acked) < total {
		t.Errorf("acknowledged %d of %d", len(acked), total)
	}
	if lost != 0 {
		t.Errorf("lost %d acknowledged messages", lost)
	}
	// A kill duplicates at most the rows the relays had claimed: BatchSize
	// (100) per relay (2).
	if bound := kills * journal.DefaultRelays * 100; dupes > bound {
		t.Errorf("%d duplicates, more than %d (claimed rows per kill)", dupes, bound)
	}
}

// journalBacklog counts the rows in the journal file.
func journalBacklog(t *testing.T, path string) int64 {
	t.Helper()
	st := openJournal(t, path)
	s, err := st.Stats(context.Background(), journal.DefaultQueue)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	_ = st.DB().Close()
	return s.Backlog
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}
