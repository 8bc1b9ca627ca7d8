//go:build !race

package journal_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlite"
	"github.com/reliamq/reliamq/internal/fakepub"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/journal"
)

// BenchmarkJournal_vs_async compares, in one run, the in-memory async pool
// (async.Config{}: 10 core, 50 max workers, 200 queued, CallerRuns) with the
// journal (journal.Config{} over an SQLite file, synchronous NORMAL as the
// package documentation advises, and FULL, sqlite.Open's default) over the
// same inner publisher:
//
//   - inner=rocketmq: the RocketMQ adapter sending to an embedded broker in
//     this process: the real client and wire protocol, with a send that
//     takes tens of microseconds and a broker that shares the two cores
//     with SQLite (the journal's worst case);
//   - inner=latency1ms: fakepub answering every send after 1 ms, the round
//     trip of a broker on another machine, with no CPU of its own.
//
// b.N one-message Publish calls from 1 or 8 producer goroutines, timed until
// Close returned: async's Close waits for its queue to drain, the journal's
// for the journal to empty, so msgs/s counts messages the inner publisher
// accepted, not just messages taken.
func BenchmarkJournal_vs_async(b *testing.B) {
	broker, err := rocketmqtest.New(rocketmqtest.Config{LongPollHold: 200 * time.Millisecond})
	if err != nil {
		b.Fatalf("broker: %v", err)
	}
	defer broker.Close()
	topic := "journal_bench"
	payload := make([]byte, 256)
	inners := []struct {
		name string
		make func(b *testing.B) message.Publisher
	}{
		{"rocketmq", func(b *testing.B) message.Publisher {
			pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{broker.NameServerAddr()}}, nil)
			if err != nil {
				b.Fatalf("publisher: %v", err)
			}
			if err := pub.Publish(topic, message.NewMessage(watermill.NewUUID(), nil)); err != nil {
				b.Fatalf("warm-up: %v", err)
			}
			return pub
		}},
		{"latency1ms", func(b *testing.B) message.Publisher {
			return &fakepub.Publisher{Func: func(string, []*message.Message) error {
				time.Sleep(time.Millisecond)
				return nil
			}}
		}},
	}
	newJournal := func(b *testing.B, inner message.Publisher, synchronous string) message.Publisher {
		db, err := sqlite.Open(filepath.Join(b.TempDir(), "journal.db"))
		if err != nil {
			b.Fatalf("open: %v", err)
		}
		b.Cleanup(func() { _ = db.Close() })
		if _, err := db.Exec("PRAGMA synchronous=" + synchronous); err != nil {
			b.Fatalf("pragma: %v", err)
		}
		st, err := sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.SQLite, Table: "journal", AutoInitialize: true}, nil)
		if err != nil {
			b.Fatalf("store: %v", err)
		}
		j, err := journal.New(inner, journal.Config{Store: st}, nil)
		if err != nil {
			b.Fatalf("journal: %v", err)
		}
		return j
	}
	variants := []struct {
		name string
		make func(b *testing.B, inner message.Publisher) message.Publisher
	}{
		{"async", func(b *testing.B, inner message.Publisher) message.Publisher {
			p, err := async.NewPublisher(inner, async.Config{}, nil)
			if err != nil {
				b.Fatalf("async: %v", err)
			}
			return p
		}},
		{"journal", func(b *testing.B, inner message.Publisher) message.Publisher {
			return newJournal(b, inner, "NORMAL")
		}},
		{"journal_full", func(b *testing.B, inner message.Publisher) message.Publisher {
			return newJournal(b, inner, "FULL")
		}},
	}
	for _, in := range inners {
		for _, producers := range []int{1, 8} {
			for _, v := range variants {
				b.Run(fmt.Sprintf("inner=%s/producers=%d/%s", in.name, producers, v.name), func(b *testing.B) {
					pub := v.make(b, in.make(b))
					msgs := make([]*message.Message, b.N)
					for i := range msgs {
						msgs[i] = message.NewMessage(watermill.NewUUID(), payload)
					}
					var next, failed atomic.Int64
					var wg sync.WaitGroup
					b.ReportAllocs()
					b.ResetTimer()
					for range producers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							for {
								i := next.Add(1) - 1
								if i >= int64(b.N) {
									return
								}
								if err := pub.Publish(topic, msgs[i]); err != nil {
									failed.Add(1)
								}
							}
						}()
					}
					wg.Wait()
					if err := pub.Close(); err != nil {
						b.Fatalf("close: %v", err)
					}
					b.StopTimer()
					if n := failed.Load(); n > 0 {
						b.Fatalf("%d publishes failed", n)
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				})
			}
		}
	}
}
