package rocketmqtest_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// rawFrame builds a frame with the given serialization type byte.
func rawFrame(serType byte, header, body []byte) []byte {
	f := make([]byte, 8, 8+len(header)+len(body))
	binary.BigEndian.PutUint32(f, uint32(4+len(header)+len(body)))
	binary.BigEndian.PutUint32(f[4:], uint32(serType)<<24|uint32(len(header)))
	return append(append(f, header...), body...)
}

func rawHeader(code int, ext string) []byte {
	return []byte(fmt.Sprintf(`{"code":%d,"language":"GO","version":317,"opaque":5,"flag":0,"extFields":{%s}}`, code, ext))
}

// probeOutcome sends data on a new connection and says what came back:
// "closed" (closed without an answer), "silent" (no answer, still open
// after two seconds) or "code N" (the response code).
func probeOutcome(t *testing.T, addr string, data []byte) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(data); err != nil {
		return "closed"
	}
	frame, err := wire.ReadFrame(conn, 16<<20)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "silent"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || err != nil:
		return "closed"
	}
	cmd, err := wire.DecodeFrame(frame)
	if err != nil {
		t.Fatalf("undecodable answer from %s: %v", addr, err)
	}
	return fmt.Sprintf("code %d", cmd.Code)
}

type fidelityTarget struct {
	name string
	addr func(t *testing.T) string
	// differs lists the probes this server answers otherwise than the
	// table (which is what RocketMQ 4.9.4 answers).
	differs map[string]string
}

// RocketMQ 5.2.0 leaves some malformed frames unanswered on an open
// connection where 4.9.4 closes it; the embedded broker closes it, as 4.9.4.
var differs520 = map[string]string{
	"empty header":                        "silent",
	"binary header codec with garbage":    "silent",
	"frame length below the header field": "silent",
	"frame length of 100 MB":              "silent",
}

func fidelityTargets() []fidelityTarget {
	return []fidelityTarget{
		{name: "embedded", addr: func(t *testing.T) string {
			b := rocketmqtest.NewTest(t, rocketmqtest.Config{})
			b.StallConsumersOnRestart(true)
			return b.BrokerAddr()
		}},
		{name: "RocketMQ 4.9.4", addr: func(t *testing.T) string { return servicetest.RocketMQ494.Cluster(t).Brokers[0] }},
		{name: "RocketMQ 5.2.0", addr: func(t *testing.T) string { return servicetest.RocketMQ520.Cluster(t).Brokers[0] }, differs: differs520},
	}
}

// Regression: the embedded broker answered undecodable frames with
// SYSTEM_ERROR where real brokers close the connection, and answered
// truncated batches and requests missing fields differently. The same raw
// probes run against the embedded broker and the real brokers; the expected
// answers are what RocketMQ 4.9.4 gave (5.2.0's differences are listed in
// differs520).
func TestBroker_answers_hostile_and_incomplete_frames_like_the_Apache_brokers(t *testing.T) {
	good := wire.EncodeBatch([]wire.BatchEntry{{Body: []byte("hello"), Properties: "UNIQ_KEY\x01X\x02"}})
	sendExt := `"producerGroup":"pg","topic":"fidelity_probe","queueId":"0","sysFlag":"0","bornTimestamp":"1","flag":"0","properties":"","reconsumeTimes":"0","unitMode":"false","batch":"false","defaultTopic":"TBW102","defaultTopicQueueNums":"4"`
	batchExt := `"a":"pg","b":"fidelity_probe","c":"TBW102","d":"4","e":"0","f":"0","g":"1","h":"0","i":"","j":"0","k":"false","m":"true"`
	headerTooLong := rawFrame(0, rawHeader(105, `"topic":"TBW102"`), nil)
	binary.BigEndian.PutUint32(headerTooLong[4:], 5000)
	cases := []struct {
		name, want string
		data       []byte
	}{
		{"undecodable JSON header", "closed", rawFrame(0, []byte("not json at all"), nil)},
		{"header length beyond the frame", "closed", headerTooLong},
		{"unknown serialization type", "closed", rawFrame(7, rawHeader(105, `"topic":"TBW102"`), nil)},
		{"empty header", "closed", rawFrame(0, nil, nil)},
		{"binary header codec with garbage", "closed", rawFrame(1, []byte("xx"), nil)},
		{"frame length below the header field", "closed", []byte{0, 0, 0, 3, 0, 0, 0}},
		{"frame length of 100 MB", "closed", []byte{0x06, 0, 0, 0, 0, 0, 0, 0}},
		{"unknown request code", "code 3", rawFrame(0, rawHeader(9999, ``), nil)},
		{"ext value that is a number", "code 3", rawFrame(0, rawHeader(9999, `"a":5`), nil)},
		{"send without ext fields", "code 1", rawFrame(0, rawHeader(10, ``), []byte("x"))},
		{"send without queueId", "code 1", rawFrame(0, rawHeader(10, strings.Replace(sendExt, `"queueId":"0",`, "", 1)), []byte("x"))},
		{"truncated batch", "code 1", rawFrame(0, rawHeader(320, batchExt), good[:len(good)-3])},
		{"batch body of garbage", "code 1", rawFrame(0, rawHeader(320, batchExt), []byte{0, 0, 0, 1, 2, 3})},
		{"pull without ext fields", "code 1", rawFrame(0, rawHeader(11, ``), nil)},
		{"query offset without ext fields", "code 1", rawFrame(0, rawHeader(14, ``), nil)},
		{"send back without ext fields", "code 1", rawFrame(0, rawHeader(36, ``), nil)},
		{"heartbeat with a bad body", "code 1", rawFrame(0, rawHeader(34, ``), []byte("{bad"))},
	}
	for _, target := range fidelityTargets() {
		t.Run(target.name, func(t *testing.T) {
			addr := target.addr(t)
			for _, tc := range cases {
				want := tc.want
				if d, ok := target.differs[tc.name]; ok {
					want = d
				}
				if got := probeOutcome(t, addr, tc.data); got != want {
					t.Errorf("%s: %s, want %s", tc.name, got, want)
				}
			}
		})
	}
}

// After a restart the Apache broker refuses the pulls of a consumer group
// until a member's next heartbeat (part of the stall consumers see after a
// restart); StallConsumersOnRestart makes the embedded broker do the same.
// The probe, a pull of a group that never sent a heartbeat, runs against
// the real brokers without restarting them.
func TestBroker_refuses_pulls_of_a_group_without_heartbeat_like_the_Apache_brokers(t *testing.T) {
	for _, target := range fidelityTargets() {
		t.Run(target.name, func(t *testing.T) {
			addr := target.addr(t)
			c := dialRaw(t, addr)
			topic := "fidelity_" + watermill.NewShortUUID()
			if r := c.call(codeSend, sendExt(topic, 0, map[string]string{"UNIQ_KEY": "F"}), []byte("x")); r.Code != 0 {
				t.Fatalf("send: code %d %s", r.Code, r.Remark)
			}
			group := "nohb_" + watermill.NewShortUUID()
			ext := pullExt(group, topic, 0, 0)
			ext["subscription"] = ""
			r := c.call(codePull, ext, nil)
			if r.Code != int32(rocketmqtest.RespSubscriptionNotExist) || !strings.Contains(r.Remark, "group info not exist") {
				t.Errorf("pull of a group without heartbeat: code %d %q, want 24 \"the consumer's group info not exist\"", r.Code, r.Remark)
			}
			// After a heartbeat the same pull is served.
			if hb := c.call(codeHeartbeat, nil, heartbeat(group+"@c", group, topic, "*")); hb.Code != 0 {
				t.Fatalf("heartbeat: code %d %s", hb.Code, hb.Remark)
			}
			if r := c.call(codePull, ext, nil); r.Code != 0 {
				t.Errorf("pull after a heartbeat: code %d %s, want 0", r.Code, r.Remark)
			}
		})
	}
}
