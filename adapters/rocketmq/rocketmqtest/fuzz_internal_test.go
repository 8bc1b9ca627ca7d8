package rocketmqtest

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

// FuzzHandle feeds arbitrary requests of every known code to the broker's
// handlers: whatever the fields and body, the broker answers or ignores the
// request and never panics.
func FuzzHandle(f *testing.F) {
	codes := []RequestCode{
		CodeSendMessage, CodeSendMessageV2, CodeSendBatchMessage, CodeSendReplyMessage, CodePullMessage,
		CodeQueryMessage, CodeQueryConsumerOffset, CodeUpdateConsumerOffset, CodeCreateTopic,
		CodeSearchOffsetByTimestamp, CodeGetMaxOffset, CodeGetMinOffset, CodeViewMessageByID, CodeHeartbeat,
		CodeUnregisterClient, CodeConsumerSendMsgBack, CodeEndTransaction, CodeGetConsumerListByGroup,
		CodeLockBatchMQ, CodeUnlockBatchMQ, CodeGetRouteInfoByTopic, CodeGetBrokerClusterInfo,
		CodeGetAllSubscriptionGroupConfig, CodeGetAllTopicListFromNameServer, CodeDeleteTopicInBroker,
		CodeDeleteTopicInNameServer, CodeGetConsumerRunningInfo, CodeConsumeMessageDirectly, 9999,
	}
	b, err := New(Config{LongPollHold: time.Millisecond, DelayScale: 0.0001})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = b.Close() })
	server, client := net.Pipe()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	c := newConn(b, server, b.stopCh)
	f.Cleanup(func() { c.close(); _ = client.Close() })

	f.Add(uint8(0), "t", "0", "0", "UNIQ_KEY\x01A\x02DELAY\x013\x02", []byte("body"))
	f.Add(uint8(2), "t", "1", "5", "", wire.EncodeBatch([]wire.BatchEntry{{Body: []byte("x")}}))
	f.Add(uint8(4), "t", "0", "-1", "*", []byte(nil))
	f.Add(uint8(13), "t", "0", "0", "", []byte(`{"clientID":"c","consumerDataSet":[{"groupName":"g","subscriptionDataSet":[{"topic":"t","subString":"a||b"}]}]}`))
	f.Add(uint8(15), "g", "0", "0", "", []byte(nil))
	f.Add(uint8(18), "g", "0", "0", "", []byte(`{"consumerGroup":"g","clientId":"c","mqSet":[{"topic":"t","queueId":1}]}`))
	f.Add(uint8(8), "%RETRY%g", "8", "8", "", []byte(nil))
	f.Fuzz(func(t *testing.T, code uint8, topic, queue, offset, props string, body []byte) {
		ext := map[string]string{
			"topic": topic, "b": topic, "queueId": queue, "e": queue, "queueOffset": offset, "offset": offset,
			"commitLogOffset": offset, "commitOffset": offset, "timestamp": offset, "sysFlag": queue, "f": queue,
			"properties": props, "i": props, "subscription": props, "consumerGroup": topic, "group": topic,
			"delayLevel": queue, "maxReconsumeTimes": queue, "readQueueNums": queue, "writeQueueNums": queue,
			"perm": queue, "commitOrRollback": queue, "maxMsgNums": queue, "key": props, "clientId": props,
			"suspendTimeoutMillis": offset, "defaultTopicQueueNums": queue, "reconsumeTimes": offset,
		}
		req := &wire.Command{Code: int32(codes[int(code)%len(codes)]), Opaque: 1, ExtFields: ext, Body: body}
		b.dispatch(c, req)
	})
}
