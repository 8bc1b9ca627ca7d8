package rocketmqtest_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

// pulledProperties pulls the message at offset of topic's queue and returns
// the properties a client decodes from it.
func pulledProperties(t *testing.T, c *rawClient, topic string, queueID int, offset int64) map[string]string {
	t.Helper()
	ext := pullExt("pp", topic, queueID, offset)
	ext["sysFlag"] = "0" // no suspension: answer at once
	r := c.call(codePull, ext, nil)
	if r.Code != 0 {
		t.Fatalf("pull %s/%d@%d: code %d %s", topic, queueID, offset, r.Code, r.Remark)
	}
	msgs, err := wire.DecodeMessages(r.Body)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("decode pulled messages: %v (%d)", err, len(msgs))
	}
	return wire.ParseProperties(msgs[0].Properties)
}

// The Apache broker (4.9.4 and 5.2.0) parses a single send's properties and
// drops those with an empty value; a batch keeps them until a copy (retry,
// dead letter, delay) parses them. The embedded broker does the same, so a
// client that relies on empty properties fails here as on a real broker.
func TestBroker_drops_empty_properties_like_the_Apache_broker(t *testing.T) {
	b := rocketmqtest.NewTest(t, rocketmqtest.Config{DelayScale: 0.001})
	c := dialRaw(t, b.NameServerAddr())

	mustSend(t, c, "ep", 0, map[string]string{"UNIQ_KEY": "S", "empty": "", "kept": "v"}, "single")
	single := pulledProperties(t, c, "ep", 0, 0)
	if _, ok := single["empty"]; ok || single["kept"] != "v" {
		t.Errorf("single send delivers %q, want kept=v and no empty", single)
	}

	body := wire.EncodeBatch([]wire.BatchEntry{{Body: []byte("b"), Properties: "UNIQ_KEY\x01B\x02empty\x01\x02kept\x01v\x02"}})
	ext := map[string]string{"a": "pg", "b": "ep", "c": "TBW102", "d": "4", "e": "1", "f": "0", "g": "1", "h": "0", "i": "", "j": "0", "k": "false", "l": "0", "m": "true"}
	if r := c.call(codeBatch, ext, body); r.Code != 0 {
		t.Fatalf("batch send: code %d %s", r.Code, r.Remark)
	}
	batched := pulledProperties(t, c, "ep", 1, 0)
	if v, ok := batched["empty"]; !ok || v != "" || batched["kept"] != "v" {
		t.Errorf("batch send delivers %q, want empty= and kept=v", batched)
	}

	var batchMsg rocketmqtest.StoredMessage
	for _, m := range b.Messages("ep") {
		if m.MsgID == "B" {
			batchMsg = m
		}
	}
	back := func(level int) {
		t.Helper()
		r := c.call(int32(rocketmqtest.CodeConsumerSendMsgBack), map[string]string{
			"group": "eg", "offset": strconv.FormatInt(batchMsg.CommitLogOffset, 10), "delayLevel": strconv.Itoa(level),
			"originMsgId": "B", "originTopic": "ep", "unitMode": "false", "maxReconsumeTimes": "16",
		}, nil)
		if r.Code != 0 {
			t.Fatalf("send back at level %d: code %d %s", level, r.Code, r.Remark)
		}
	}
	back(1)
	back(-1)
	deadline := time.Now().Add(5 * time.Second)
	for len(b.Messages("%RETRY%eg")) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for _, topic := range []string{"%RETRY%eg", "%DLQ%eg"} {
		props := pulledProperties(t, c, topic, 0, 0)
		if _, ok := props["empty"]; ok || props["kept"] != "v" || props["UNIQ_KEY"] != "B" {
			t.Errorf("%s copy of the batch message has %q, want kept=v and no empty", topic, props)
		}
	}
}

func TestHasEmptyProperty_finds_empty_names_and_values(t *testing.T) {
	for s, want := range map[string]bool{
		"":                      false,
		"a\x01b\x02":            false,
		"a\x01b":                false,
		"a\x01\x02":             true,
		"a\x01":                 true,
		"\x01b\x02":             true,
		"a\x01b\x02\x01c\x02":   true,
		"a\x01b\x02c\x01\x02":   true,
		"a\x01bc\x02d\x01e\x02": false,
	} {
		if got := wire.HasEmptyProperty(s); got != want {
			t.Errorf("HasEmptyProperty(%q) = %v, want %v", s, got, want)
		}
	}
}
