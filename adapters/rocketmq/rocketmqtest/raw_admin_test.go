package rocketmqtest_test

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
)

func TestBroker_finds_messages_by_key_and_unique_key(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	c := dialRaw(t, b.NameServerAddr())
	mustSend(t, c, "qm", 0, map[string]string{"KEYS": "order-1 customer-9", "UNIQ_KEY": "U1"}, "a")
	mustSend(t, c, "qm", 1, map[string]string{"KEYS": "order-2", "UNIQ_KEY": "U2"}, "b")
	query := func(key string) (int32, []wire.Message) {
		r := c.call(int32(rocketmqtest.CodeQueryMessage), map[string]string{
			"topic": "qm", "key": key, "maxNum": "32", "beginTimestamp": "0", "endTimestamp": strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10),
		}, nil)
		msgs, err := wire.DecodeMessages(r.Body)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		return r.Code, msgs
	}
	if code, msgs := query("customer-9"); code != 0 || len(msgs) != 1 || string(msgs[0].Body) != "a" {
		t.Errorf("by key: code %d, %d messages", code, len(msgs))
	}
	if code, msgs := query("U2"); code != 0 || len(msgs) != 1 || string(msgs[0].Body) != "b" {
		t.Errorf("by unique key: code %d, %d messages", code, len(msgs))
	}
	if code, _ := query("nothing"); code != int32(rocketmqtest.RespQueryNotFound) {
		t.Errorf("missing key: code %d, want 22", code)
	}
	off := b.Messages("qm")[0].CommitLogOffset
	r := c.call(int32(rocketmqtest.CodeViewMessageByID), map[string]string{"offset": strconv.FormatInt(off, 10)}, nil)
	if msgs, _ := wire.DecodeMessages(r.Body); r.Code != 0 || len(msgs) != 1 || string(msgs[0].Body) != "a" {
		t.Errorf("view by id: code %d", r.Code)
	}
}

func TestBroker_forwards_consumer_running_info_requests_to_the_consumer(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	consumerConn := dialRaw(t, b.NameServerAddr())
	consumerConn.call(codeHeartbeat, nil, heartbeat("cid-9", "rg", "rt", "*"))
	admin := dialRaw(t, b.NameServerAddr())

	// The "consumer" answers the forwarded request on its own goroutine.
	answered := make(chan error, 1)
	go func() {
		for {
			_ = consumerConn.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			frame, err := wire.ReadFrame(consumerConn.r, 1<<20)
			if err != nil {
				answered <- err
				return
			}
			req, err := wire.DecodeFrame(frame)
			if err != nil {
				answered <- err
				return
			}
			if req.Code != int32(rocketmqtest.CodeGetConsumerRunningInfo) {
				continue // notifications
			}
			out, _ := (&wire.Command{Opaque: req.Opaque, Flag: wire.FlagResponse, Body: []byte(`{"running":true}`)}).Encode()
			_, err = consumerConn.nc.Write(out)
			answered <- err
			return
		}
	}()
	r := admin.call(int32(rocketmqtest.CodeGetConsumerRunningInfo), map[string]string{"consumerGroup": "rg", "clientId": "cid-9", "jstackEnable": "false"}, nil)
	if err := <-answered; err != nil {
		t.Fatalf("consumer side: %v", err)
	}
	if r.Code != 0 || string(r.Body) != `{"running":true}` {
		t.Errorf("forwarded answer: code %d body %q", r.Code, r.Body)
	}
	r = admin.call(int32(rocketmqtest.CodeGetConsumerRunningInfo), map[string]string{"consumerGroup": "rg", "clientId": "nobody"}, nil)
	if r.Code != int32(rocketmqtest.RespSystemError) {
		t.Errorf("unknown client: code %d, want 1", r.Code)
	}
}

func TestBroker_expires_consumers_that_stop_heartbeating_their_group(t *testing.T) {
	clk := clocktest.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{Clock: clk})
	c := dialRaw(t, b.NameServerAddr())
	c.call(codeHeartbeat, nil, heartbeat("cid-x", "eg", "et", "*"))
	if m := b.ConsumerGroupMembers("eg"); len(m) != 1 {
		t.Fatalf("members = %v", m)
	}
	// The connection stays open (a shared client whose other users still
	// heartbeat), but no heartbeat names the group any more.
	for i := 0; i < 13; i++ {
		clk.Advance(10 * time.Second)
		time.Sleep(5 * time.Millisecond)
	}
	waitForCond(t, "the member to expire", func() bool { return len(b.ConsumerGroupMembers("eg")) == 0 })
}

func TestBroker_keeps_half_messages_hidden_until_end_transaction(t *testing.T) {
	clk := clocktest.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{Clock: clk, TransactionCheckInterval: time.Minute, TransactionCheckMax: 1})
	c := dialRaw(t, b.NameServerAddr())
	body, _ := jsonMarshal(map[string]any{"clientID": "prod-1", "producerDataSet": []any{map[string]any{"groupName": "txg"}}, "consumerDataSet": []any{}})
	c.call(codeHeartbeat, nil, body)

	half := func(body string) (int64, *wire.Command) {
		ext := sendExt("txt", 0, map[string]string{"TRAN_MSG": "true", "PGROUP": "txg", "UNIQ_KEY": "TX-" + body})
		ext["sysFlag"] = "4"
		r := c.call(codeSend, ext, []byte(body))
		if r.Code != 0 || r.ExtFields["transactionId"] != "TX-"+body {
			t.Fatalf("half send: %+v", r)
		}
		for _, m := range b.Messages("RMQ_SYS_TRANS_HALF_TOPIC") {
			if string(m.Body) == body {
				return m.CommitLogOffset, r
			}
		}
		t.Fatalf("half message %q not stored", body)
		return 0, nil
	}
	end := func(off int64, typ int) int32 {
		return c.call(int32(rocketmqtest.CodeEndTransaction), map[string]string{
			"producerGroup": "txg", "commitLogOffset": strconv.FormatInt(off, 10), "commitOrRollback": strconv.Itoa(typ),
		}, nil).Code
	}
	commitOff, _ := half("yes")
	rollbackOff, _ := half("no")
	checkOff, _ := half("later")
	if n := len(b.Messages("txt")); n != 0 {
		t.Fatalf("%d half messages visible in the real topic", n)
	}
	if code := end(commitOff, 8); code != 0 {
		t.Fatalf("commit: %d", code)
	}
	if code := end(rollbackOff, 12); code != 0 {
		t.Fatalf("rollback: %d", code)
	}
	if code := end(rollbackOff, 8); code != int32(rocketmqtest.RespSystemError) {
		t.Errorf("commit after rollback: code %d, want 1", code)
	}
	if msgs := b.Messages("txt"); len(msgs) != 1 || string(msgs[0].Body) != "yes" || msgs[0].SysFlag&0xC != 8 {
		t.Fatalf("real topic after commit and rollback: %+v", msgs)
	}

	// The undecided one is checked back at its producer group.
	c.pushed = nil
	clk.Advance(time.Minute)
	waitForCond(t, "a CHECK_TRANSACTION_STATE", func() bool {
		c.call(codeRoute, map[string]string{"topic": "txt"}, nil)
		for _, p := range c.pushed {
			if p.Code == int32(rocketmqtest.CodeCheckTransactionState) {
				return true
			}
		}
		return false
	})
	var check *wire.Command
	for _, p := range c.pushed {
		if p.Code == int32(rocketmqtest.CodeCheckTransactionState) {
			check = p
		}
	}
	msgs, err := wire.DecodeMessages(check.Body)
	if err != nil || len(msgs) != 1 || msgs[0].Topic != "txt" || string(msgs[0].Body) != "later" ||
		check.ExtFields["commitLogOffset"] != strconv.FormatInt(checkOff, 10) || check.ExtFields["transactionId"] != "TX-later" {
		t.Fatalf("check request %+v, body %+v, %v", check.ExtFields, msgs, err)
	}
	// Past TransactionCheckMax the half message is dropped.
	clk.Advance(time.Minute)
	waitForCond(t, "the undecided half message to be dropped", func() bool { return end(checkOff, 8) == int32(rocketmqtest.RespSystemError) })
}

func TestBroker_refuses_sql92_subscriptions_like_a_broker_without_property_filters(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	c := dialRaw(t, b.NameServerAddr())
	mustSend(t, c, "sqlt", 0, nil, "x")
	hb, _ := jsonMarshal(map[string]any{"clientID": "s1", "consumerDataSet": []any{map[string]any{
		"groupName": "sqlg", "messageModel": "CLUSTERING",
		"subscriptionDataSet": []any{map[string]any{"topic": "sqlt", "subString": "a > 1", "expressionType": "SQL92"}},
	}}})
	c.call(codeHeartbeat, nil, hb)
	if r := c.call(codePull, pullExt("sqlg", "sqlt", 0, 0), nil); r.Code != int32(rocketmqtest.RespSystemError) {
		t.Errorf("pull with a SQL92 subscription: code %d, want 1", r.Code)
	}
}

func TestBroker_does_not_answer_requests_flagged_oneway(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	c := dialRaw(t, b.NameServerAddr())
	c.write(&wire.Command{Code: int32(rocketmqtest.CodeUpdateConsumerOffset), Flag: wire.FlagOneway,
		ExtFields: map[string]string{"consumerGroup": "ow", "topic": "owt", "queueId": "2", "commitOffset": "7"}})
	if _, err := c.read(200 * time.Millisecond); err == nil {
		t.Error("a oneway request was answered")
	}
	if got := b.ConsumerOffsets("ow", "owt"); got[2] != 7 {
		t.Errorf("offsets = %v, want queue 2 at 7", got)
	}
}

func TestBroker_answers_cluster_and_subscription_group_queries(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{ClusterName: "C1", BrokerName: "b1"})
	c := dialRaw(t, b.NameServerAddr())
	c.call(codeHeartbeat, nil, heartbeat("cid", "sg1", "st", "*"))

	var cluster struct {
		BrokerAddrTable map[string]struct {
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerAddrTable"`
		ClusterAddrTable map[string][]string `json:"clusterAddrTable"`
	}
	r := c.call(int32(rocketmqtest.CodeGetBrokerClusterInfo), nil, nil)
	if err := jsonUnmarshal(r.Body, &cluster); err != nil || cluster.BrokerAddrTable["b1"].BrokerAddrs["0"] != b.BrokerAddr() || len(cluster.ClusterAddrTable["C1"]) != 1 {
		t.Errorf("cluster info %s, %v", r.Body, err)
	}
	var groups struct {
		SubscriptionGroupTable map[string]struct {
			GroupName string `json:"groupName"`
		} `json:"subscriptionGroupTable"`
	}
	r = c.call(int32(rocketmqtest.CodeGetAllSubscriptionGroupConfig), nil, nil)
	if err := jsonUnmarshal(r.Body, &groups); err != nil || groups.SubscriptionGroupTable["sg1"].GroupName != "sg1" {
		t.Errorf("subscription groups %s, %v", r.Body, err)
	}
	topics := b.Topics()
	if !contains(topics, "%RETRY%sg1") || !contains(topics, "TBW102") {
		t.Errorf("Topics() = %v", topics)
	}
}

func TestBroker_keeps_properties_written_without_a_trailing_separator(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	c := dialRaw(t, b.NameServerAddr())
	ext := sendExt("props", 0, nil)
	ext["properties"] = "UNIQ_KEY\x01P1\x02user\x01v" // no final \x02
	if r := c.call(codeSend, ext, []byte("x")); r.Code != 0 {
		t.Fatalf("send: %d", r.Code)
	}
	r := c.call(codePull, pullExt("g", "props", 0, 0), nil)
	msgs, err := wire.DecodeMessages(r.Body)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("pull: %v", err)
	}
	props := wire.ParseProperties(msgs[0].Properties)
	if props["user"] != "v" || props["UNIQ_KEY"] != "P1" || props["CLUSTER"] != "DefaultCluster" {
		t.Errorf("properties = %q", props)
	}
}

func TestBroker_grows_a_topic_while_clients_send_and_pull(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{LongPollHold: -1})
	b.CreateTopic(rocketmqtest.TopicConfig{Name: "grow", ReadQueues: 1, WriteQueues: 1})
	c := dialRaw(t, b.NameServerAddr())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 2; n <= 16; n++ {
			b.CreateTopic(rocketmqtest.TopicConfig{Name: "grow", ReadQueues: n, WriteQueues: n})
		}
	}()
	for i := 0; i < 50; i++ {
		mustSend(t, c, "grow", 0, nil, "x")
		c.call(codePull, pullExt("g", "grow", 0, int64(i)), nil)
	}
	<-done
	mustSend(t, c, "grow", 15, nil, "in the last queue")
	if n := len(b.Messages("grow")); n != 51 {
		t.Errorf("%d messages, want 51", n)
	}
}

func TestBroker_close_ends_every_goroutine_of_the_broker(t *testing.T) {
	before := goleak.IgnoreCurrent()
	b, err := rocketmqtest.New(rocketmqtest.Config{LongPollHold: time.Minute, DelayScale: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.NameServerAddr())
	mustSend(t, c, "gl", 0, map[string]string{"DELAY": "18"}, "delayed two hours")
	mustSend(t, c, "gl", 1, nil, "x")
	c.call(codeHeartbeat, nil, heartbeat("cid", "glg", "gl", "*"))
	// A held pull, a request held by injected latency, and a silenced one.
	held := pullExt("glg", "gl", 1, 1)
	held["sysFlag"] = "2"
	c.write(&wire.Command{Code: codePull, ExtFields: held})
	b.SetLatency(rocketmqtest.CodeGetMaxOffset, time.Hour)
	c.write(&wire.Command{Code: int32(rocketmqtest.CodeGetMaxOffset), ExtFields: map[string]string{"topic": "gl", "queueId": "0"}})
	b.Silence(rocketmqtest.CodeGetMinOffset, true)
	c.write(&wire.Command{Code: int32(rocketmqtest.CodeGetMinOffset), ExtFields: map[string]string{"topic": "gl", "queueId": "0"}})
	time.Sleep(50 * time.Millisecond)
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := b.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before)
}

func TestBroker_survives_concurrent_stops_restarts_and_closes(t *testing.T) {
	b, err := rocketmqtest.New(rocketmqtest.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				_ = b.Stop()
				_ = b.Restart()
				b.DropConnections()
			}
		}()
	}
	wg.Wait()
	c := dialRaw(t, b.NameServerAddr())
	mustSend(t, c, "cc", 0, nil, "still serving")
	var cwg sync.WaitGroup
	for i := 0; i < 3; i++ {
		cwg.Add(1)
		go func() { defer cwg.Done(); _ = b.Close() }()
	}
	cwg.Wait()
	if err := b.Restart(); !errors.Is(err, rocketmqtest.ErrClosed) {
		t.Errorf("restart after close: %v", err)
	}
}

func TestBroker_replaces_a_member_subscription_table_on_each_heartbeat(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{LongPollHold: -1})
	c := dialRaw(t, b.NameServerAddr())
	mustSend(t, c, "subs", 0, map[string]string{"TAGS": "A"}, "a")
	mustSend(t, c, "subs", 0, map[string]string{"TAGS": "B"}, "b")
	count := func() int {
		r := c.call(codePull, pullExt("sg", "subs", 0, 0), nil)
		msgs, _ := wire.DecodeMessages(r.Body)
		return len(msgs)
	}
	c.call(codeHeartbeat, nil, heartbeat("c1", "sg", "subs", "A"))
	if n := count(); n != 1 {
		t.Fatalf("with subscription A: %d messages, want 1", n)
	}
	// The group now subscribes another topic only: pulls of "subs" are no
	// longer filtered by the old expression.
	c.call(codeHeartbeat, nil, heartbeat("c1", "sg", "other", "X"))
	if n := count(); n != 2 {
		t.Errorf("after the subscription was dropped: %d messages, want 2", n)
	}
}

func TestBroker_filters_each_topic_of_a_group_whose_members_subscribe_different_topics(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{LongPollHold: -1})
	one := dialRaw(t, b.NameServerAddr())
	two := dialRaw(t, b.NameServerAddr())
	for _, topic := range []string{"ta", "tb"} {
		mustSend(t, one, topic, 0, map[string]string{"TAGS": "A"}, "a")
		mustSend(t, one, topic, 0, map[string]string{"TAGS": "B"}, "b")
	}
	one.call(codeHeartbeat, nil, heartbeat("m1", "mixed", "ta", "A"))
	two.call(codeHeartbeat, nil, heartbeat("m2", "mixed", "tb", "B"))
	one.call(codeRoute, map[string]string{"topic": "ta"}, nil) // collects the join notification
	// Heartbeats repeat every 30 s; unchanged ones notify nobody.
	one.pushed, two.pushed = nil, nil
	one.call(codeHeartbeat, nil, heartbeat("m1", "mixed", "ta", "A"))
	two.call(codeHeartbeat, nil, heartbeat("m2", "mixed", "tb", "B"))
	one.call(codeRoute, map[string]string{"topic": "ta"}, nil)
	if notified(one.pushed, "mixed") || notified(two.pushed, "mixed") {
		t.Error("unchanged heartbeats notified the group")
	}
	pulled := func(topic string) []string {
		r := one.call(codePull, pullExt("mixed", topic, 0, 0), nil)
		msgs, _ := wire.DecodeMessages(r.Body)
		var bodies []string
		for _, m := range msgs {
			bodies = append(bodies, string(m.Body))
		}
		return bodies
	}
	if got := pulled("ta"); len(got) != 1 || got[0] != "a" {
		t.Errorf("ta pulled %v, want [a]", got)
	}
	if got := pulled("tb"); len(got) != 1 || got[0] != "b" {
		t.Errorf("tb pulled %v, want [b]", got)
	}
}

func TestBroker_rejects_groups_too_long_for_their_retry_topic(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	c := dialRaw(t, b.NameServerAddr())
	mustSend(t, c, "lg", 0, nil, "x")
	long := strings.Repeat("g", 300)
	if r := c.call(codeHeartbeat, nil, heartbeat("c", long, "lg", "*")); r.Code != 0 {
		t.Errorf("heartbeat: %d", r.Code)
	}
	off := b.Messages("lg")[0].CommitLogOffset
	r := c.call(int32(rocketmqtest.CodeConsumerSendMsgBack), map[string]string{"group": long, "offset": strconv.FormatInt(off, 10), "delayLevel": "0"}, nil)
	if r.Code != int32(rocketmqtest.RespSystemError) {
		t.Errorf("send back for a 300-byte group: code %d, want 1", r.Code)
	}
	for _, topic := range b.Topics() {
		if len(topic) > 127 {
			t.Errorf("topic of %d bytes created", len(topic))
		}
	}
}
