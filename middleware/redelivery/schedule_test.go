package redelivery_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

var rocketMQDelays = []time.Duration{
	10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 3 * time.Minute,
	4 * time.Minute, 5 * time.Minute, 6 * time.Minute, 7 * time.Minute, 8 * time.Minute,
	9 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour,
}

func TestRedelivery_follows_the_RocketMQ_schedule_then_dead_letters(t *testing.T) {
	cases := []struct {
		name       string
		maxRetries int // 0: the default policy
		wantDelays []time.Duration
	}{
		{name: "default 16 retries", wantDelays: rocketMQDelays},
		{name: "max 20 retries wait 2h past the 16th", maxRetries: 20,
			wantDelays: append(append([]time.Duration(nil), rocketMQDelays...), 2*time.Hour, 2*time.Hour, 2*time.Hour, 2*time.Hour)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := clocktest.NewFake(time.Time{})
			hooks := newHookRecorder()
			rec := newRecorder()
			cfg := redelivery.Config{ConsumerGroup: "billing", Handler: "charge", Clock: fake, Hooks: []any{hooks}}
			if c.maxRetries > 0 {
				cfg.Policy = policy.RocketMQ().WithMaxRetries(c.maxRetries)
			}
			handlerErr := errors.New("payment service down")
			rg := newRig(t, cfg, "orders", func(msg *message.Message) error {
				rec.record(msg, fake.Now())
				return handlerErr
			})

			sent := message.NewMessage("order-1", []byte(`{"id":1}`))
			sent.Metadata.Set("tenant", "acme")
			start := fake.Now()
			if err := rg.ps.Publish("orders", sent); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			var gotDelays []time.Duration
			for retry := 1; retry <= len(c.wantDelays); retry++ {
				recv(t, rec.ch, "delivery")
				s := recv(t, hooks.scheduled, "scheduled event")
				if s.Retry != retry || s.MessageUUID != "order-1" || s.Topic != "orders" || !errors.Is(s.Err, handlerErr) {
					t.Fatalf("scheduled event %d = %+v", retry, s)
				}
				gotDelays = append(gotDelays, s.Delay)
				if err := fake.BlockUntil(ctx, 1); err != nil {
					t.Fatal(err)
				}
				fake.Advance(s.Delay)
			}
			recv(t, rec.ch, "last delivery")
			dl := recv(t, rg.dlq, "dead-letter message")
			dl.Ack()

			if diff := cmp.Diff(c.wantDelays, gotDelays); diff != "" {
				t.Fatalf("scheduled delays (-want +got):\n%s", diff)
			}
			// Each delivery came exactly its delay after the previous one, with
			// the reconsume count 0..N, the same UUID and the failure facts.
			rec.mu.Lock()
			got := rec.got
			rec.mu.Unlock()
			if len(got) != len(c.wantDelays)+1 {
				t.Fatalf("deliveries = %d, want %d", len(got), len(c.wantDelays)+1)
			}
			at := start
			for i, d := range got {
				if i > 0 {
					at = at.Add(c.wantDelays[i-1])
				}
				if d.UUID != "order-1" || d.Reconsume != strconv.Itoa(i) || !d.At.Equal(at) {
					t.Fatalf("delivery %d: uuid %s reconsume %s at +%v, want order-1, %d, +%v", i, d.UUID, d.Reconsume, d.At.Sub(start), i, at.Sub(start))
				}
				if i > 0 {
					want := map[string]string{
						metadata.OriginalUUID:     "order-1",
						metadata.FirstFailureTime: start.Format(time.RFC3339Nano),
						metadata.LastError:        handlerErr.Error(),
						metadata.ConsumerGroup:    "billing",
						metadata.OriginalTopic:    "orders",
						"tenant":                  "acme",
					}
					for k, v := range want {
						if d.Metadata.Get(k) != v {
							t.Fatalf("delivery %d: metadata %s = %q, want %q", i, k, d.Metadata.Get(k), v)
						}
					}
				}
			}
			var total time.Duration
			for _, d := range gotDelays {
				total += d
			}
			// RocketMQ's documentation rounds this total to "4h46m".
			if c.maxRetries == 0 && total != 4*time.Hour+45*time.Minute+40*time.Second {
				t.Fatalf("total wait %v, want 4h45m40s", total)
			}

			attempts := len(c.wantDelays) + 1
			wantDLQ := map[string]string{
				metadata.DeadLetterReason: redelivery.ReasonMaxAttempts,
				metadata.Attempts:         strconv.Itoa(attempts),
				metadata.ReconsumeTimes:   strconv.Itoa(attempts - 1),
				metadata.OriginalTopic:    "orders",
				metadata.Handler:          "charge",
				metadata.ConsumerGroup:    "billing",
				metadata.OriginalUUID:     "order-1",
				metadata.LastError:        handlerErr.Error(),
				metadata.FirstFailureTime: start.Format(time.RFC3339Nano),
				"tenant":                  "acme",
			}
			for k, v := range wantDLQ {
				if dl.Metadata.Get(k) != v {
					t.Errorf("DLQ metadata %s = %q, want %q", k, dl.Metadata.Get(k), v)
				}
			}
			if dl.UUID != "order-1" || string(dl.Payload) != `{"id":1}` {
				t.Errorf("DLQ message %s %q", dl.UUID, dl.Payload)
			}
			ev := recv(t, hooks.deadLetter, "dead-letter event")
			if ev.Attempts != attempts || ev.Reason != redelivery.ReasonMaxAttempts {
				t.Errorf("dead-letter event %+v", ev)
			}
			st := rg.r.Stats()
			want := redelivery.Stats{Failed: uint64(attempts), Scheduled: uint64(attempts - 1), Redelivered: uint64(attempts - 1), DeadLettered: 1}
			if diff := cmp.Diff(want, st); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
		})
	}
}
