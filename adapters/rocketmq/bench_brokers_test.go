//go:build !race

package rocketmq_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	rmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/google/uuid"

	"github.com/reliamq/reliamq/adapters/rocketmq"
)

// BenchmarkBrokers is the same client load, SendSync of 1 KiB bodies from 1,
// 8 and 32 goroutines over one producer, against every broker it finds:
//
//	embedded  the standalone rocketmqtest command (cmd/rocketmqtest), a process
//	          of its own like the real brokers, at RELIAMQ_ROCKETMQTEST_ADDR
//	4.9.4     the real Apache broker at RELIAMQ_ROCKETMQ494_NAMESRV
//	5.2.0     the real Apache broker at RELIAMQ_ROCKETMQ520_NAMESRV
//
// Each sends with the raw client and with the adapter's Publisher (1 and 8
// goroutines; adapter_uuidpool with google/uuid's random pool on, which
// takes the system random source off the per-message path of
// watermill.NewUUID). A target whose variable is unset is skipped. The topic has 4
// queues on one broker (the first master) in every case, so a two-broker
// cluster does not get twice the broker. scripts/bench-brokers starts the
// standalone broker and runs the sub-benchmarks interleaved over rounds.
func BenchmarkBrokers(b *testing.B) {
	// No client log lines on either side (rlog's default logs at info).
	rocketmq.RouteClientLogs(nil, rocketmq.ClientLogOff)
	body := make([]byte, 1024)
	targets := []struct{ name, env string }{
		{"embedded", "RELIAMQ_ROCKETMQTEST_ADDR"},
		{"4.9.4", "RELIAMQ_ROCKETMQ494_NAMESRV"},
		{"5.2.0", "RELIAMQ_ROCKETMQ520_NAMESRV"},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			ns := os.Getenv(tg.env)
			if ns == "" {
				b.Skipf("%s is not set", tg.env)
			}
			for _, g := range []int{1, 8, 32} {
				b.Run(fmt.Sprintf("raw/goroutines=%d", g), func(b *testing.B) {
					p, topic := benchRawProducer(b, ns)
					send := func() error {
						res, err := p.SendSync(context.Background(), primitive.NewMessage(topic, body))
						if err == nil && res.Status != primitive.SendOK {
							err = fmt.Errorf("status %d", res.Status)
						}
						return err
					}
					benchSends(b, g, send)
				})
			}
			for _, g := range []int{1, 8} {
				b.Run(fmt.Sprintf("adapter/goroutines=%d", g), func(b *testing.B) {
					benchAdapter(b, ns, g, body)
				})
				// The same with google/uuid's random pool, so that
				// watermill.NewUUID does not read the system's random
				// source for every message: what creating the Watermill
				// message costs, apart from the adapter.
				b.Run(fmt.Sprintf("adapter_uuidpool/goroutines=%d", g), func(b *testing.B) {
					uuid.EnableRandPool()
					b.Cleanup(uuid.DisableRandPool)
					benchAdapter(b, ns, g, body)
				})
			}
		})
	}
}

func benchAdapter(b *testing.B, ns string, g int, body []byte) {
	topic := benchTopic(b, ns)
	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{ns}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pub.Close() })
	send := func() error {
		return pub.Publish(topic, message.NewMessage(watermill.NewUUID(), body))
	}
	benchSends(b, g, send)
}

// benchSends warms the sender up (routes, connection), then times b.N sends
// over g goroutines and reports msgs/s and the CPU time per send.
func benchSends(b *testing.B, g int, send func() error) {
	for i := 0; i < 100; i++ {
		if err := send(); err != nil {
			b.Fatalf("warm-up send: %v", err)
		}
	}
	cpu := startSection(b)
	start := time.Now()
	runConcurrent(b, g, send)
	elapsed := time.Since(start)
	cpu.endSection(b)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

var (
	benchTopicsMu sync.Mutex
	benchTopics   = map[string]string{} // name server -> topic
)

// benchTopic returns a topic with 4 queues on the first master of ns,
// created once per process and name server.
func benchTopic(b *testing.B, ns string) string {
	b.Helper()
	benchTopicsMu.Lock()
	defer benchTopicsMu.Unlock()
	if t, ok := benchTopics[ns]; ok {
		return t
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, err := rocketmq.FirstMaster(ctx, []string{ns})
	if err != nil {
		b.Fatalf("find a broker of %s: %v", ns, err)
	}
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{ns})))
	if err != nil {
		b.Fatal(err)
	}
	defer adm.Close()
	topic := "bench-brokers-" + watermill.NewShortUUID()
	if err := adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(addr),
		admin.WithReadQueueNums(4), admin.WithWriteQueueNums(4), admin.WithPerm(6)); err != nil {
		b.Fatalf("create %s on %s: %v", topic, addr, err)
	}
	for {
		if names, err := rocketmq.TopicMasters(ctx, []string{ns}, topic); err == nil && len(names) == 1 {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("no route for %s on %s", topic, ns)
		}
		time.Sleep(100 * time.Millisecond)
	}
	benchTopics[ns] = topic
	return topic
}

func benchRawProducer(b *testing.B, ns string) (rmq.Producer, string) {
	b.Helper()
	topic := benchTopic(b, ns)
	p, err := rmq.NewProducer(
		producer.WithNameServer([]string{ns}),
		producer.WithInstanceName("bench-raw-"+watermill.NewShortUUID()),
		producer.WithGroupName("bench-raw"),
		producer.WithRetry(0),
	)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Shutdown() })
	return p, topic
}
