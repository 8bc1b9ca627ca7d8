//go:build !race

package rocketmqtest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

func TestBroker_redelivers_retry_later_with_growing_reconsume_times_then_dead_letters(t *testing.T) {
	levels := make([]time.Duration, 18)
	for i := range levels {
		levels[i] = time.Duration(i+1) * 5 * time.Millisecond
	}
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DelayLevels: levels})
	p := newProducer(t, b)
	topic, group := uniqueName("t"), uniqueName("g")

	msg := primitive.NewMessage(topic, []byte("retry me"))
	msg.WithTag("T")
	msg.WithProperty("user", "kept")
	res, err := p.SendSync(context.Background(), msg)
	if err != nil {
		t.Fatalf("send: %v", err)
	}

	const maxReconsume = 3
	var mu sync.Mutex
	var seen []int32
	var ids []string
	startConsumer(t, b, consumerOpts{
		group: group, topic: topic,
		opts: []consumer.Option{consumer.WithMaxReconsumeTimes(maxReconsume)},
		handler: func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range msgs {
				seen = append(seen, m.ReconsumeTimes)
				ids = append(ids, m.MsgId)
			}
			return consumer.ConsumeRetryLater, nil
		},
	})

	waitFor(t, 10*time.Second, "the message in the DLQ", func() bool { return len(b.Messages("%DLQ%"+group)) == 1 })
	mu.Lock()
	defer mu.Unlock()
	want := []int32{0, 1, 2, 3}
	if len(seen) != len(want) {
		t.Fatalf("reconsume times seen = %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("reconsume times seen = %v, want %v", seen, want)
		}
		if ids[i] != res.MsgID {
			t.Errorf("delivery %d has MsgId %q, want %q", i, ids[i], res.MsgID)
		}
	}
	dlq := b.Messages("%DLQ%" + group)[0]
	if dlq.MsgID != res.MsgID || string(dlq.Body) != "retry me" || dlq.Tags != "T" || dlq.Properties["user"] != "kept" {
		t.Errorf("DLQ message = %+v", dlq)
	}
	if dlq.ReconsumeTimes != maxReconsume+1 || dlq.Properties["RETRY_TOPIC"] != topic || dlq.Properties["ORIGIN_MESSAGE_ID"] != res.OffsetMsgID {
		t.Errorf("DLQ facts: reconsume=%d RETRY_TOPIC=%q ORIGIN_MESSAGE_ID=%q (want %q)",
			dlq.ReconsumeTimes, dlq.Properties["RETRY_TOPIC"], dlq.Properties["ORIGIN_MESSAGE_ID"], res.OffsetMsgID)
	}
	if n := len(b.Messages("%RETRY%" + group)); n != maxReconsume {
		t.Errorf("retry topic holds %d messages, want %d", n, maxReconsume)
	}
}
