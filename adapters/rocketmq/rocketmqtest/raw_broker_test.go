package rocketmqtest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
)

const (
	codeRoute     = int32(rocketmqtest.CodeGetRouteInfoByTopic)
	codeSend      = int32(rocketmqtest.CodeSendMessage)
	codeBatch     = int32(rocketmqtest.CodeSendBatchMessage)
	codePull      = int32(rocketmqtest.CodePullMessage)
	codeHeartbeat = int32(rocketmqtest.CodeHeartbeat)
)

func heartbeat(clientID, group, topic, expr string) []byte {
	body, _ := json.Marshal(map[string]any{
		"clientID":        clientID,
		"producerDataSet": []any{},
		"consumerDataSet": []any{map[string]any{
			"groupName": group, "consumeType": "CONSUME_PASSIVELY", "messageModel": "CLUSTERING",
			"consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET", "unitMode": false,
			"subscriptionDataSet": []any{map[string]any{"topic": topic, "subString": expr, "expressionType": "TAG"}},
		}},
	})
	return body
}

func mustSend(t *testing.T, c *rawClient, topic string, queueID int, props map[string]string, body string) *wire.Command {
	t.Helper()
	r := c.call(codeSend, sendExt(topic, queueID, props), []byte(body))
	if r.Code != 0 {
		t.Fatalf("send to %s/%d: code %d %s", topic, queueID, r.Code, r.Remark)
	}
	return r
}

func TestBroker_filters_pulls_with_the_heartbeat_subscription(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{LongPollHold: -1})
	c := dialRaw(t, b.NameServerAddr())
	for i, tag := range []string{"A", "B", "A", "B", "B"} {
		mustSend(t, c, "filt", 0, map[string]string{"TAGS": tag, "UNIQ_KEY": strconv.Itoa(i)}, "x")
	}
	if r := c.call(codeHeartbeat, nil, heartbeat("cid-1", "fg", "filt", "A")); r.Code != 0 {
		t.Fatalf("heartbeat: %d", r.Code)
	}
	// Push consumers pull without a subscription (sysFlag bit 4 clear).
	r := c.call(codePull, pullExt("fg", "filt", 0, 0), nil)
	msgs, _ := wire.DecodeMessages(r.Body)
	if r.Code != 0 || len(msgs) != 2 || r.ExtFields["nextBeginOffset"] != "5" {
		t.Fatalf("pull: code %d, %d messages, next %s", r.Code, len(msgs), r.ExtFields["nextBeginOffset"])
	}
	for _, m := range msgs {
		if wire.ParseProperties(m.Properties)["TAGS"] != "A" {
			t.Errorf("pulled a message tagged %q", wire.ParseProperties(m.Properties)["TAGS"])
		}
	}
	// Only filtered-out messages from offset 3: retry immediately, offset advanced.
	r = c.call(codePull, pullExt("fg", "filt", 0, 3), nil)
	if r.Code != int32(rocketmqtest.RespPullRetryImmediately) || r.ExtFields["nextBeginOffset"] != "5" {
		t.Errorf("pull of B-only range: code %d next %s, want 20 and 5", r.Code, r.ExtFields["nextBeginOffset"])
	}
	// At the end of the queue: not found, offset unchanged.
	r = c.call(codePull, pullExt("fg", "filt", 0, 5), nil)
	if r.Code != int32(rocketmqtest.RespPullNotFound) || r.ExtFields["nextBeginOffset"] != "5" {
		t.Errorf("pull at the end: code %d next %s, want 19 and 5", r.Code, r.ExtFields["nextBeginOffset"])
	}
	// Past the end: offset moved back to the max.
	r = c.call(codePull, pullExt("fg", "filt", 0, 9), nil)
	if r.Code != int32(rocketmqtest.RespPullOffsetMoved) || r.ExtFields["nextBeginOffset"] != "5" {
		t.Errorf("pull past the end: code %d next %s, want 21 and 5", r.Code, r.ExtFields["nextBeginOffset"])
	}
	// A pull carrying its own subscription (sysFlag bit 4) uses it.
	own := pullExt("fg", "filt", 0, 0)
	own["sysFlag"], own["subscription"] = "4", "B"
	r = c.call(codePull, own, nil)
	if msgs, _ := wire.DecodeMessages(r.Body); r.Code != 0 || len(msgs) != 3 {
		t.Errorf("pull with its own subscription: code %d, %d messages, want 3", r.Code, len(msgs))
	}
}

func TestBroker_holds_an_empty_pull_until_a_message_arrives(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{LongPollHold: 10 * time.Second})
	consumerConn := dialRaw(t, b.NameServerAddr())
	producerConn := dialRaw(t, b.NameServerAddr())
	mustSend(t, producerConn, "lp", 0, nil, "first")

	ext := pullExt("g", "lp", 0, 1)
	ext["sysFlag"] = "2" // suspend allowed
	op := consumerConn.write(&wire.Command{Code: codePull, ExtFields: ext})
	if _, err := consumerConn.read(200 * time.Millisecond); err == nil {
		t.Fatal("an empty pull was answered at once, not held")
	}
	mustSend(t, producerConn, "lp", 0, nil, "second")
	r, err := consumerConn.read(5 * time.Second)
	if err != nil {
		t.Fatalf("held pull not answered after a send: %v", err)
	}
	msgs, _ := wire.DecodeMessages(r.Body)
	if r.Opaque != op || r.Code != 0 || len(msgs) != 1 || string(msgs[0].Body) != "second" {
		t.Errorf("held pull answered code %d with %d messages", r.Code, len(msgs))
	}
}

func TestBroker_answers_an_empty_pull_after_the_hold(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{LongPollHold: 100 * time.Millisecond})
	c := dialRaw(t, b.NameServerAddr())
	mustSend(t, c, "hold", 0, nil, "x")
	ext := pullExt("g", "hold", 0, 1)
	ext["sysFlag"] = "2"
	start := time.Now()
	r := c.call(codePull, ext, nil)
	if r.Code != int32(rocketmqtest.RespPullNotFound) {
		t.Fatalf("code %d, want 19", r.Code)
	}
	if held := time.Since(start); held < 100*time.Millisecond {
		t.Errorf("answered after %v, before the 100ms hold", held)
	}
}

func TestBroker_notifies_group_members_when_membership_changes(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	first := dialRaw(t, b.NameServerAddr())
	first.call(codeHeartbeat, nil, heartbeat("cid-1", "ng", "nt", "*"))
	first.pushed = nil

	second := dialRaw(t, b.NameServerAddr())
	second.call(codeHeartbeat, nil, heartbeat("cid-2", "ng", "nt", "*"))
	// A ping on the first connection collects the notification sent before it.
	first.call(codeRoute, map[string]string{"topic": "TBW102"}, nil)
	if !notified(first.pushed, "ng") {
		t.Fatalf("first member not notified of the second joining (pushed %v)", first.pushed)
	}
	list := first.call(int32(rocketmqtest.CodeGetConsumerListByGroup), map[string]string{"consumerGroup": "ng"}, nil)
	var ids struct {
		ConsumerIDList []string `json:"consumerIdList"`
	}
	if err := json.Unmarshal(list.Body, &ids); err != nil || len(ids.ConsumerIDList) != 2 {
		t.Fatalf("consumer list %s, %v", list.Body, err)
	}

	// A repeated heartbeat with nothing new notifies nobody.
	first.pushed = nil
	second.call(codeHeartbeat, nil, heartbeat("cid-2", "ng", "nt", "*"))
	first.call(codeRoute, map[string]string{"topic": "TBW102"}, nil)
	if notified(first.pushed, "ng") {
		t.Error("an unchanged heartbeat notified the group")
	}

	_ = second.nc.Close()
	waitForCond(t, "the first member to be notified of the close", func() bool {
		first.call(codeRoute, map[string]string{"topic": "TBW102"}, nil)
		return notified(first.pushed, "ng")
	})
	if m := b.ConsumerGroupMembers("ng"); len(m) != 1 || m[0] != "cid-1" {
		t.Errorf("members after close = %v", m)
	}
}

func notified(cmds []*wire.Command, group string) bool {
	for _, c := range cmds {
		if c.Code == int32(rocketmqtest.CodeNotifyConsumerIDsChanged) && c.ExtFields["consumerGroup"] == group && c.IsOneway() {
			return true
		}
	}
	return false
}

func waitForCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBroker_locks_queues_for_one_client_at_a_time(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	c1 := dialRaw(t, b.NameServerAddr())
	c2 := dialRaw(t, b.NameServerAddr())
	lock := func(c *rawClient, code rocketmqtest.RequestCode, client string, queues ...int) []int {
		var set []map[string]any
		for _, q := range queues {
			set = append(set, map[string]any{"topic": "ot", "brokerName": "broker-a", "queueId": q})
		}
		body, _ := json.Marshal(map[string]any{"consumerGroup": "og", "clientId": client, "mqSet": set})
		r := c.call(int32(code), nil, body)
		if r.Code != 0 {
			t.Fatalf("lock request %d: code %d", code, r.Code)
		}
		if code == rocketmqtest.CodeUnlockBatchMQ {
			return nil
		}
		var resp struct {
			LockOKMQSet []struct {
				QueueID int `json:"queueId"`
			} `json:"lockOKMQSet"`
		}
		if err := json.Unmarshal(r.Body, &resp); err != nil {
			t.Fatalf("lock body %s: %v", r.Body, err)
		}
		var ok []int
		for _, mq := range resp.LockOKMQSet {
			ok = append(ok, mq.QueueID)
		}
		return ok
	}
	if got := lock(c1, rocketmqtest.CodeLockBatchMQ, "a", 0, 1); len(got) != 2 {
		t.Fatalf("first lock got %v, want both queues", got)
	}
	if got := lock(c2, rocketmqtest.CodeLockBatchMQ, "b", 1, 2); len(got) != 1 || got[0] != 2 {
		t.Fatalf("second client locked %v, want only queue 2", got)
	}
	if got := lock(c1, rocketmqtest.CodeLockBatchMQ, "a", 0, 1); len(got) != 2 {
		t.Fatalf("relock by the holder got %v", got)
	}
	lock(c1, rocketmqtest.CodeUnlockBatchMQ, "a", 1)
	if got := lock(c2, rocketmqtest.CodeLockBatchMQ, "b", 1); len(got) != 1 {
		t.Fatalf("lock after unlock got %v", got)
	}
	// Locks of a client are released when its connection closes.
	c1.call(codeHeartbeat, nil, heartbeat("a", "og", "ot", "*"))
	_ = c1.nc.Close()
	waitForCond(t, "queue 0 to be released", func() bool { return len(lock(c2, rocketmqtest.CodeLockBatchMQ, "b", 0)) == 1 })
}

func TestBroker_sends_back_to_retry_then_dead_letter_queue(t *testing.T) {
	clk := clocktest.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{Clock: clk})
	c := dialRaw(t, b.NameServerAddr())
	resp := mustSend(t, c, "sb", 0, map[string]string{"UNIQ_KEY": "U1", "TAGS": "t"}, "payload")
	orig := b.Messages("sb")[0]

	back := func(offset int64, level, max int) int32 {
		return c.call(int32(rocketmqtest.CodeConsumerSendMsgBack), map[string]string{
			"group": "sg", "offset": strconv.FormatInt(offset, 10), "delayLevel": strconv.Itoa(level),
			"originMsgId": "U1", "originTopic": "sb", "unitMode": "false", "maxReconsumeTimes": strconv.Itoa(max),
		}, nil).Code
	}
	if code := back(orig.CommitLogOffset, 0, 2); code != 0 {
		t.Fatalf("send back: code %d", code)
	}
	// Level 0 means 3 + reconsume times = level 3 = 10 s, on the injected clock.
	if n := len(b.Messages("%RETRY%sg")); n != 0 {
		t.Fatalf("retry message visible before its delay")
	}
	sched := b.Messages("SCHEDULE_TOPIC_XXXX")
	if len(sched) != 1 || sched[0].QueueID != 2 || sched[0].Properties["REAL_TOPIC"] != "%RETRY%sg" {
		t.Fatalf("schedule topic = %+v", sched)
	}
	clk.Advance(9 * time.Second)
	time.Sleep(20 * time.Millisecond)
	if n := len(b.Messages("%RETRY%sg")); n != 0 {
		t.Fatalf("retry message visible after 9s of a 10s delay")
	}
	clk.Advance(time.Second)
	waitForCond(t, "the retry message", func() bool { return len(b.Messages("%RETRY%sg")) == 1 })
	retry := b.Messages("%RETRY%sg")[0]
	if retry.ReconsumeTimes != 1 || retry.MsgID != "U1" || retry.Properties["RETRY_TOPIC"] != "sb" ||
		retry.Properties["ORIGIN_MESSAGE_ID"] != resp.ExtFields["msgId"] || string(retry.Body) != "payload" ||
		retry.Tags != "t" || retry.Properties["DELAY"] != "" || retry.Properties["REAL_TOPIC"] != "%RETRY%sg" {
		t.Errorf("retry message = %+v", retry)
	}

	// Negative level: straight to the DLQ, whatever the reconsume times.
	if code := back(retry.CommitLogOffset, -1, 16); code != 0 {
		t.Fatalf("send back to DLQ: code %d", code)
	}
	// Reconsume times at the max: DLQ too.
	if code := back(retry.CommitLogOffset, 0, 1); code != 0 {
		t.Fatalf("send back at max: code %d", code)
	}
	dlq := b.Messages("%DLQ%sg")
	if len(dlq) != 2 || dlq[0].ReconsumeTimes != 2 || dlq[0].MsgID != "U1" || dlq[0].Properties["ORIGIN_MESSAGE_ID"] != resp.ExtFields["msgId"] {
		t.Errorf("DLQ = %+v", dlq)
	}
	if r := c.call(codeRoute, map[string]string{"topic": "%DLQ%sg"}, nil); r.Code != 0 {
		t.Errorf("DLQ topic has no route: %d", r.Code)
	}
	// An unknown commit-log offset is an error.
	if code := back(1<<40, 0, 16); code != int32(rocketmqtest.RespSystemError) {
		t.Errorf("send back of an unknown offset: code %d, want 1", code)
	}
}

func TestBroker_answers_consumer_offset_requests(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy rocketmqtest.NewGroupOffsetPolicy
		code   int32
	}{
		{"zero while young", rocketmqtest.NewGroupOffsetZeroWhileYoung, 0},
		{"not found", rocketmqtest.NewGroupOffsetNotFound, int32(rocketmqtest.RespQueryNotFound)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clocktest.NewFake(time.UnixMilli(1_000_000))
			b := rocketmqtest.NewTest(t, rocketmqtest.Config{NewGroupOffset: tc.policy, Clock: clk})
			c := dialRaw(t, b.NameServerAddr())
			for i := 0; i < 3; i++ {
				mustSend(t, c, "off", 1, nil, "x")
				clk.Advance(time.Second)
			}
			q := map[string]string{"consumerGroup": "og", "topic": "off", "queueId": "1"}
			if r := c.call(int32(rocketmqtest.CodeQueryConsumerOffset), q, nil); r.Code != tc.code || (r.Code == 0 && r.ExtFields["offset"] != "0") {
				t.Errorf("new group query: code %d offset %q", r.Code, r.ExtFields["offset"])
			}
			u := map[string]string{"consumerGroup": "og", "topic": "off", "queueId": "1", "commitOffset": "2"}
			c.call(int32(rocketmqtest.CodeUpdateConsumerOffset), u, nil)
			if r := c.call(int32(rocketmqtest.CodeQueryConsumerOffset), q, nil); r.Code != 0 || r.ExtFields["offset"] != "2" {
				t.Errorf("query after update: code %d offset %q", r.Code, r.ExtFields["offset"])
			}
			// Committing through a pull (sysFlag bit 1).
			p := pullExt("og", "off", 1, 3)
			p["sysFlag"], p["commitOffset"] = "1", "3"
			c.call(codePull, p, nil)
			if got := b.ConsumerOffsets("og", "off"); got[1] != 3 {
				t.Errorf("offsets after a committing pull = %v", got)
			}
			at := func(code rocketmqtest.RequestCode, ext map[string]string) string {
				return c.call(int32(code), ext, nil).ExtFields["offset"]
			}
			tq := map[string]string{"topic": "off", "queueId": "1"}
			if mx, mn := at(rocketmqtest.CodeGetMaxOffset, tq), at(rocketmqtest.CodeGetMinOffset, tq); mx != "3" || mn != "0" {
				t.Errorf("max %s min %s, want 3 and 0", mx, mn)
			}
			ts := map[string]string{"topic": "off", "queueId": "1", "timestamp": strconv.FormatInt(1_001_000, 10)}
			if got := at(rocketmqtest.CodeSearchOffsetByTimestamp, ts); got != "1" {
				t.Errorf("offset at the second message's store time = %s, want 1", got)
			}
		})
	}
}

func TestBroker_creates_lists_and_deletes_topics_and_honours_auto_create(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DisableAutoCreateTopics: true})
	c := dialRaw(t, b.NameServerAddr())
	if r := c.call(codeRoute, map[string]string{"topic": "TBW102"}, nil); r.Code != int32(rocketmqtest.RespTopicNotExist) {
		t.Errorf("TBW102 has a route with auto-create off: %d", r.Code)
	}
	if r := c.call(codeSend, sendExt("manual", 0, nil), []byte("x")); r.Code != int32(rocketmqtest.RespTopicNotExist) {
		t.Errorf("send to a missing topic with auto-create off: code %d, want 17", r.Code)
	}
	create := map[string]string{"topic": "manual", "readQueueNums": "8", "writeQueueNums": "8", "perm": "6", "order": "false"}
	if r := c.call(int32(rocketmqtest.CodeCreateTopic), create, nil); r.Code != 0 {
		t.Fatalf("create: %d", r.Code)
	}
	r := c.call(codeRoute, map[string]string{"topic": "manual"}, nil)
	var route struct {
		QueueDatas []struct {
			WriteQueueNums int `json:"writeQueueNums"`
			Perm           int `json:"perm"`
		} `json:"queueDatas"`
		BrokerDatas []struct {
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerDatas"`
	}
	if err := json.Unmarshal(r.Body, &route); err != nil || len(route.QueueDatas) != 1 || route.QueueDatas[0].WriteQueueNums != 8 ||
		route.BrokerDatas[0].BrokerAddrs["0"] != b.BrokerAddr() {
		t.Fatalf("route %s, %v", r.Body, err)
	}
	mustSend(t, c, "manual", 7, nil, "x")
	if r := c.call(codeRoute, map[string]string{"topic": "%RETRY%newgroup"}, nil); r.Code != 0 {
		t.Errorf("retry topic route not created on demand: %d", r.Code)
	}
	var list struct {
		TopicList []string `json:"topicList"`
	}
	lr := c.call(int32(rocketmqtest.CodeGetAllTopicListFromNameServer), nil, nil)
	if err := json.Unmarshal(lr.Body, &list); err != nil || !contains(list.TopicList, "manual") || !contains(list.TopicList, "%RETRY%newgroup") {
		t.Errorf("topic list %s, %v", lr.Body, err)
	}
	c.call(int32(rocketmqtest.CodeDeleteTopicInBroker), map[string]string{"topic": "manual"}, nil)
	c.call(int32(rocketmqtest.CodeDeleteTopicInNameServer), map[string]string{"topic": "manual"}, nil)
	if r := c.call(codeRoute, map[string]string{"topic": "manual"}, nil); r.Code != int32(rocketmqtest.RespTopicNotExist) {
		t.Errorf("deleted topic still routed: %d", r.Code)
	}
	if b.Messages("manual") != nil {
		t.Error("deleted topic still has messages")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestBroker_rejects_bad_sends_with_the_broker_codes(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{MaxMessageSize: 1024})
	c := dialRaw(t, b.NameServerAddr())
	cases := []struct {
		name string
		code int32
		ext  map[string]string
		body []byte
		want rocketmqtest.ResponseCode
	}{
		{"body over the max size", codeSend, sendExt("big", 0, nil), make([]byte, 1025), rocketmqtest.RespMessageIllegal},
		{"invalid topic name", codeSend, sendExt("bad topic!", 0, nil), []byte("x"), rocketmqtest.RespSystemError},
		{"queue id out of range", codeSend, sendExt("range", 99, nil), []byte("x"), rocketmqtest.RespSystemError},
		{"schedule topic", codeSend, sendExt("SCHEDULE_TOPIC_XXXX", 0, nil), []byte("x"), rocketmqtest.RespNoPermission},
		{"bad queue id", codeSend, map[string]string{"topic": "x", "queueId": "nan", "sysFlag": "0"}, []byte("x"), rocketmqtest.RespSystemError},
		// The Apache broker answers an exception while decoding with SYSTEM_ERROR.
		{"batch with a broken body", codeBatch, sendExt("bt", 0, nil), []byte{0, 0, 0, 99, 1}, rocketmqtest.RespSystemError},
		{"bad heartbeat body", codeHeartbeat, nil, []byte("{"), rocketmqtest.RespSystemError},
		{"pull of a missing topic", codePull, pullExt("g", "nope", 0, 0), nil, rocketmqtest.RespTopicNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if r := c.call(tc.code, tc.ext, tc.body); r.Code != int32(tc.want) {
				t.Errorf("code %d (%s), want %d", r.Code, r.Remark, tc.want)
			}
		})
	}
}

func TestBroker_stores_batches_contiguously_with_one_id_each(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	c := dialRaw(t, b.NameServerAddr())
	body := wire.EncodeBatch([]wire.BatchEntry{
		{Body: []byte("a"), Properties: "UNIQ_KEY\x01A\x02"},
		{Body: []byte("b"), Properties: "UNIQ_KEY\x01B\x02"},
	})
	ext := map[string]string{"a": "pg", "b": "batch", "c": "TBW102", "d": "4", "e": "2", "f": "0", "g": "1", "h": "0", "i": "", "j": "0", "k": "false", "l": "0", "m": "true"}
	r := c.call(codeBatch, ext, body)
	if r.Code != 0 || r.ExtFields["queueId"] != "2" || r.ExtFields["queueOffset"] != "0" {
		t.Fatalf("batch send: %+v", r)
	}
	msgs := b.Messages("batch")
	if len(msgs) != 2 || msgs[0].MsgID != "A" || msgs[1].MsgID != "B" || msgs[1].QueueOffset != 1 {
		t.Fatalf("stored %+v", msgs)
	}
	if want := msgs[0].OffsetMsgID + "," + msgs[1].OffsetMsgID; r.ExtFields["msgId"] != want {
		t.Errorf("msgId %q, want %q", r.ExtFields["msgId"], want)
	}
}

func TestBroker_survives_bad_frames_without_disturbing_other_clients(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	good := dialRaw(t, b.NameServerAddr())
	mustSend(t, good, "robust", 0, nil, "before")

	frames := map[string][]byte{
		"huge length":        {0x7f, 0xff, 0xff, 0xff, 1, 2, 3},
		"negative length":    {0xff, 0xff, 0xff, 0xf0},
		"length below 4":     {0, 0, 0, 1, 0},
		"binary header":      {0, 0, 0, 4, 1, 0, 0, 0},
		"header beyond body": {0, 0, 0, 6, 0, 0, 0, 50, '{', '}'},
		"garbage":            []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", b.NameServerAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_, _ = nc.Write(frame)
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			// Either an error response or a closed connection; never silence.
			buf := make([]byte, 4096)
			n, err := nc.Read(buf)
			if err == nil && n >= 8 {
				cmd, derr := wire.DecodeFrame(buf[4:n])
				if derr != nil || cmd.Code == 0 {
					t.Errorf("answered %d bytes that are not an error response", n)
				}
			} else if ne := (net.Error)(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("no answer and no close: %v", err)
			}
		})
	}
	// Bad JSON inside a well-formed frame closes the connection unanswered,
	// as on the Apache broker; other connections carry on.
	bad := dialRaw(t, b.NameServerAddr())
	_, _ = bad.nc.Write(append([]byte{0, 0, 0, 7, 0, 0, 0, 3}, "{x}"...))
	if r, err := bad.read(5 * time.Second); err == nil || errors.As(err, new(net.Error)) && err.(net.Error).Timeout() {
		t.Fatalf("bad JSON header: answered %v, %v; want the connection closed", r, err)
	}
	mustSend(t, good, "robust", 0, nil, "after")
	if n := len(b.Messages("robust")); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
}

func TestBroker_handles_concurrent_producers_and_consumers(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{LongPollHold: 50 * time.Millisecond})
	const producers, perProducer = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for p := 0; p < producers; p++ {
		c := dialRaw(t, b.NameServerAddr())
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < perProducer; i++ {
				op := c.write(&wire.Command{Code: codeSend, ExtFields: sendExt("conc", i%4, map[string]string{"UNIQ_KEY": fmt.Sprintf("%d-%d", p, i)}), Body: []byte("x")})
				r, err := c.read(5 * time.Second)
				if err != nil || r.Opaque != op || r.Code != 0 {
					errs <- fmt.Errorf("producer %d send %d: %v %v", p, i, r, err)
					return
				}
			}
		}(p)
	}
	// A consumer pulling all four queues while the producers run.
	seen := map[string]bool{}
	cons := dialRaw(t, b.NameServerAddr())
	offsets := make([]int64, 4)
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < producers*perProducer && time.Now().Before(deadline) {
		for q := 0; q < 4; q++ {
			ext := pullExt("cg", "conc", q, offsets[q])
			ext["sysFlag"] = "2"
			r := cons.call(codePull, ext, nil)
			if r.Code == int32(rocketmqtest.RespTopicNotExist) {
				continue
			}
			msgs, err := wire.DecodeMessages(r.Body)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			for _, m := range msgs {
				if m.QueueOffset != offsets[q] {
					t.Fatalf("queue %d: got offset %d, want %d (gap or reorder)", q, m.QueueOffset, offsets[q])
				}
				offsets[q]++
				seen[wire.ParseProperties(m.Properties)["UNIQ_KEY"]] = true
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != producers*perProducer {
		t.Errorf("consumed %d distinct messages, want %d", len(seen), producers*perProducer)
	}
}

func TestBroker_stop_and_restart_keep_data_and_close_is_final(t *testing.T) {
	b, err := rocketmqtest.New(rocketmqtest.Config{DelayScale: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.NameServerAddr()
	c := dialRaw(t, addr)
	mustSend(t, c, "life", 0, map[string]string{"UNIQ_KEY": "L"}, "x")
	orig := b.Messages("life")[0]
	c.call(int32(rocketmqtest.CodeConsumerSendMsgBack), map[string]string{
		"group": "lg", "offset": strconv.FormatInt(orig.CommitLogOffset, 10), "delayLevel": "5", "maxReconsumeTimes": "16",
	}, nil) // 1 minute * 0.01 = 600 ms
	c.call(int32(rocketmqtest.CodeUpdateConsumerOffset), map[string]string{"consumerGroup": "lg", "topic": "life", "queueId": "0", "commitOffset": "1"}, nil)

	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("a stopped broker accepts connections")
	}
	if b.PendingDelayed() != 1 {
		t.Fatalf("pending delayed messages after stop: %d", b.PendingDelayed())
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	c = dialRaw(t, addr)
	if r := c.call(int32(rocketmqtest.CodeQueryConsumerOffset), map[string]string{"consumerGroup": "lg", "topic": "life", "queueId": "0"}, nil); r.ExtFields["offset"] != "1" {
		t.Errorf("offset after restart: %v", r.ExtFields)
	}
	waitForCond(t, "the delayed retry after restart", func() bool { return len(b.Messages("%RETRY%lg")) == 1 })

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := b.Restart(); !errors.Is(err, rocketmqtest.ErrClosed) {
		t.Errorf("restart after close: %v, want ErrClosed", err)
	}
	if err := b.Stop(); !errors.Is(err, rocketmqtest.ErrClosed) {
		t.Errorf("stop after close: %v, want ErrClosed", err)
	}
}

func TestBroker_answers_injected_faults_per_request_code(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	c := dialRaw(t, b.NameServerAddr())
	b.Fail(rocketmqtest.CodeSendMessage, rocketmqtest.RespSystemBusy, 2)
	for i := 0; i < 2; i++ {
		if r := c.call(codeSend, sendExt("ft", 0, nil), []byte("x")); r.Code != int32(rocketmqtest.RespSystemBusy) {
			t.Fatalf("send %d: code %d, want 2", i, r.Code)
		}
	}
	mustSend(t, c, "ft", 0, nil, "x")
	if r := c.call(codeRoute, map[string]string{"topic": "ft"}, nil); r.Code != 0 {
		t.Errorf("a fault on one code hit another: %d", r.Code)
	}
	b.FailRandomly(rocketmqtest.CodeGetMaxOffset, rocketmqtest.RespSystemError, 1)
	if r := c.call(int32(rocketmqtest.CodeGetMaxOffset), map[string]string{"topic": "ft", "queueId": "0"}, nil); r.Code != 1 {
		t.Errorf("probability 1: code %d", r.Code)
	}
	b.Silence(rocketmqtest.CodeGetMinOffset, true)
	c.write(&wire.Command{Code: int32(rocketmqtest.CodeGetMinOffset), ExtFields: map[string]string{"topic": "ft", "queueId": "0"}})
	if _, err := c.read(200 * time.Millisecond); err == nil {
		t.Error("a silenced code was answered")
	}
	b.ClearFaults()
	c = dialRaw(t, b.NameServerAddr())
	if r := c.call(int32(rocketmqtest.CodeGetMaxOffset), map[string]string{"topic": "ft", "queueId": "0"}, nil); r.Code != 0 || r.ExtFields["offset"] != "1" {
		t.Errorf("after ClearFaults: code %d offset %s", r.Code, r.ExtFields["offset"])
	}
	b.DropConnections()
	if _, err := c.read(2 * time.Second); err == nil {
		t.Error("connection still open after DropConnections")
	}
	c = dialRaw(t, b.NameServerAddr())
	mustSend(t, c, "ft", 0, nil, "after the drop")
}

func TestConfig_Validate_names_every_bad_field(t *testing.T) {
	cases := []struct {
		name string
		cfg  rocketmqtest.Config
		ok   bool
	}{
		{"zero value", rocketmqtest.Config{}, true},
		{"bad address", rocketmqtest.Config{Addr: "nope"}, false},
		{"negative delay", rocketmqtest.Config{DelayLevels: []time.Duration{-1}}, false},
		{"negative scale", rocketmqtest.Config{DelayScale: -1}, false},
		{"unknown policy", rocketmqtest.Config{NewGroupOffset: 7}, false},
		{"negative queues", rocketmqtest.Config{DefaultQueueNums: -1}, false},
		{"negative sizes", rocketmqtest.Config{MaxMessageSize: -1, MaxFrameSize: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, ok want %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, rocketmqtest.ErrInvalidConfig) {
				t.Errorf("error %v is not ErrInvalidConfig", err)
			}
			b, err := rocketmqtest.New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("New() = %v, ok want %v", err, tc.ok)
			}
			if b != nil {
				_ = b.Close()
			}
		})
	}
}
