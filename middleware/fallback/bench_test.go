//go:build !race

package fallback_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/middleware/fallback"
)

type countHook struct {
	n      atomic.Int64
	target int64
	done   chan struct{}
}

func (h *countHook) OnRelaySent(fallback.SentParams) {
	if h.n.Add(1) == h.target {
		close(h.done)
	}
}

// BenchmarkRelay_drain_vs_direct_publish compares, in one run and against one
// embedded broker, publishing messages straight to the broker (one sync
// Publish at a time) with the relay draining the same number of stored rows
// from SQLite and PostgreSQL into it. ns/op and msgs/s are per message; the
// relay figure covers claim, send and delete.
func BenchmarkRelay_drain_vs_direct_publish(b *testing.B) {
	broker, err := rocketmqtest.New(rocketmqtest.Config{LongPollHold: 200 * time.Millisecond})
	if err != nil {
		b.Fatalf("broker: %v", err)
	}
	defer broker.Close()
	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{broker.NameServerAddr()}}, nil)
	if err != nil {
		b.Fatalf("publisher: %v", err)
	}
	defer pub.Close()
	topic := uniqueName("bench")
	if err := pub.Publish(topic, message.NewMessage("warm-up", nil)); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	payload := make([]byte, 512)

	b.Run("direct", func(b *testing.B) {
		msgs := make([]*message.Message, b.N)
		for i := range msgs {
			msgs[i] = message.NewMessage(fmt.Sprint("d", i), payload)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := pub.Publish(topic, msgs[i]); err != nil {
				b.Fatalf("publish: %v", err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	for _, be := range []backend{sqliteBackend, postgresBackend} {
		for _, conc := range []int{1, 4} {
			b.Run(fmt.Sprintf("relay/%s/concurrency=%d", be.Name, conc), func(b *testing.B) {
				db := sqlstoretest.Open(b, be.Dialect)
				db.SetMaxIdleConns(8)
				st := newStore(b, be, db, nil)
				rows := make([]sqlstore.Message, b.N)
				for i := range rows {
					rows[i] = sqlstore.Message{Topic: topic, UUID: fmt.Sprint("r", i), Payload: payload}
				}
				if err := st.Insert(context.Background(), rows...); err != nil {
					b.Fatalf("insert: %v", err)
				}
				hook := &countHook{target: int64(b.N), done: make(chan struct{})}
				relay, err := fallback.NewRelay(fallback.RelayConfig{Store: st, Publisher: pub, BatchSize: 100,
					Concurrency: conc, PollInterval: 10 * time.Millisecond, Hooks: []any{hook}}, nil)
				if err != nil {
					b.Fatalf("relay: %v", err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				b.ReportAllocs()
				b.ResetTimer()
				go func() { done <- relay.Run(ctx) }()
				select {
				case <-hook.done:
				case <-time.After(5 * time.Minute):
					b.Fatalf("relay sent %d of %d", hook.n.Load(), b.N)
				}
				b.StopTimer()
				cancel()
				<-done
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}
