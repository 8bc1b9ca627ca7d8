package rocketmqtest_test

import (
	"strconv"
	"testing"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

func sendExt(topic string, queueID int, props map[string]string) map[string]string {
	return map[string]string{
		"producerGroup": "pg", "topic": topic, "queueId": strconv.Itoa(queueID), "sysFlag": "0",
		"bornTimestamp": "1700000000000", "flag": "0", "properties": wire.FormatProperties(props),
		"reconsumeTimes": "0", "unitMode": "false", "maxReconsumeTimes": "0", "batch": "false",
		"defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
	}
}

func pullExt(group, topic string, queueID int, offset int64) map[string]string {
	return map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(queueID),
		"queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": "32", "sysFlag": "0",
		"commitOffset": "0", "suspendTimeoutMillis": "20000", "subscription": "*",
		"subVersion": "0", "expressionType": "TAG",
	}
}

func TestBroker_answers_routes_sends_and_pulls_over_the_raw_protocol(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
	c := dialRaw(t, b.NameServerAddr())

	if r := c.call(int32(rocketmqtest.CodeGetRouteInfoByTopic), map[string]string{"topic": "raw-missing"}, nil); r.Code != int32(rocketmqtest.RespTopicNotExist) {
		t.Fatalf("route of an unknown topic: code %d, want 17", r.Code)
	}
	if r := c.call(int32(rocketmqtest.CodeGetRouteInfoByTopic), map[string]string{"topic": "TBW102"}, nil); r.Code != 0 || len(r.Body) == 0 {
		t.Fatalf("route of TBW102: code %d body %q", r.Code, r.Body)
	}

	resp := c.call(int32(rocketmqtest.CodeSendMessage), sendExt("raw-topic", 1, map[string]string{"UNIQ_KEY": "ID1", "TAGS": "a"}), []byte("payload"))
	if resp.Code != 0 || resp.ExtFields["queueId"] != "1" || resp.ExtFields["queueOffset"] != "0" || len(resp.ExtFields["msgId"]) != 32 {
		t.Fatalf("send response: %+v", resp)
	}

	pull := c.call(int32(rocketmqtest.CodePullMessage), pullExt("g", "raw-topic", 1, 0), nil)
	if pull.Code != 0 || pull.ExtFields["nextBeginOffset"] != "1" {
		t.Fatalf("pull response: code %d ext %v", pull.Code, pull.ExtFields)
	}
	msgs, err := wire.DecodeMessages(pull.Body)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("decode pulled messages: %d, %v", len(msgs), err)
	}
	m := msgs[0]
	if string(m.Body) != "payload" || m.Topic != "raw-topic" || m.QueueID != 1 || m.QueueOffset != 0 {
		t.Errorf("pulled message = %+v", m)
	}
	if wire.OffsetMsgID(m.StoreHost, m.CommitLogOffset) != resp.ExtFields["msgId"] {
		t.Errorf("offset msg id of pulled copy differs from the send response")
	}
	if props := wire.ParseProperties(m.Properties); props["UNIQ_KEY"] != "ID1" || props["CLUSTER"] != "DefaultCluster" {
		t.Errorf("properties = %v", props)
	}

	// Unknown request codes are answered, not dropped.
	if r := c.call(9999, nil, nil); r.Code != int32(rocketmqtest.RespRequestCodeNotSupported) {
		t.Errorf("unknown code answered %d, want 3", r.Code)
	}
}
