//go:build !race

package rocketmqtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

// txListener decides by the message body; "check" is undecided at send time
// and committed when the broker checks back.
type txListener struct{ checked chan string }

func (l txListener) ExecuteLocalTransaction(m *primitive.Message) primitive.LocalTransactionState {
	switch string(m.Body) {
	case "commit":
		return primitive.CommitMessageState
	case "rollback":
		return primitive.RollbackMessageState
	}
	return primitive.UnknowState
}

func (l txListener) CheckLocalTransaction(m *primitive.MessageExt) primitive.LocalTransactionState {
	select {
	case l.checked <- string(m.Body):
	default:
	}
	return primitive.CommitMessageState
}

func TestBroker_commits_rolls_back_and_checks_back_transactional_messages(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{TransactionCheckInterval: 200 * time.Millisecond})
	topic := uniqueName("t")
	plain := newProducer(t, b)
	if _, err := plain.SendSync(context.Background(), primitive.NewMessage(topic, []byte("create"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	l := txListener{checked: make(chan string, 1)}
	tp, err := rocketmq.NewTransactionProducer(l,
		producer.WithNameServer([]string{b.NameServerAddr()}),
		producer.WithInstanceName(uniqueName("tp")),
		producer.WithGroupName(uniqueName("tpg")))
	if err != nil {
		t.Fatalf("new transaction producer: %v", err)
	}
	if err := tp.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = tp.Shutdown() })

	ids := map[string]string{}
	for _, body := range []string{"commit", "rollback", "check"} {
		res, err := tp.SendMessageInTransaction(context.Background(), primitive.NewMessage(topic, []byte(body)))
		if err != nil {
			t.Fatalf("send %s: %v", body, err)
		}
		ids[body] = res.MsgID
	}
	visible := func() map[string]bool {
		out := map[string]bool{}
		for _, m := range b.Messages(topic) {
			out[string(m.Body)] = true
		}
		return out
	}
	waitFor(t, 5*time.Second, "the committed message", func() bool { return visible()["commit"] })
	if v := visible(); v["rollback"] || v["check"] {
		t.Fatalf("undecided or rolled back message visible before any check: %v", v)
	}
	select {
	case body := <-l.checked:
		if body != "check" {
			t.Errorf("broker checked back %q, want the undecided message", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no transaction check-back")
	}
	waitFor(t, 5*time.Second, "the message committed on check-back", func() bool { return visible()["check"] })
	if visible()["rollback"] {
		t.Error("rolled back message became visible")
	}
	for _, m := range b.Messages(topic) {
		if body := string(m.Body); ids[body] != "" && m.MsgID != ids[body] {
			t.Errorf("%s: stored MsgId %q, send result %q", body, m.MsgID, ids[body])
		}
		if _, ok := m.Properties["TRAN_MSG"]; ok {
			t.Errorf("committed message %q still marked prepared", m.Body)
		}
	}
}

func TestBroker_pushes_replies_to_the_requesting_producer(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	topic := uniqueName("rpc")
	requester := newProducer(t, b)
	if _, err := requester.SendSync(context.Background(), primitive.NewMessage(topic, []byte("create"))); err != nil {
		t.Fatalf("send: %v", err)
	}
	replier := newProducer(t, b)
	startConsumer(t, b, consumerOpts{group: uniqueName("g"), topic: topic, handler: func(ctx context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, m := range msgs {
			if string(m.Body) != "ping" {
				continue
			}
			reply, err := consumer.CreateReplyMessage(m, nil)
			if err != nil {
				t.Errorf("create reply: %v", err)
				continue
			}
			reply.Body = []byte("pong") // CreateReplyMessage in v2.1.2 drops the body
			if _, err := replier.SendSync(ctx, reply); err != nil {
				t.Errorf("send reply: %v", err)
			}
		}
		return consumer.ConsumeSuccess, nil
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := requester.Request(ctx, 5*time.Second, primitive.NewMessage(topic, []byte("ping")))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if string(reply.Body) != "pong" {
		t.Errorf("reply body %q, want pong", reply.Body)
	}
}
