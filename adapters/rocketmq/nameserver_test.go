package rocketmq_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/reliamq/reliamq/adapters/rocketmq"
)

// javaRouteBody is a route as the Apache name server writes it: fastjson
// emits the broker id keys without quotes, which is not valid JSON.
const javaRouteBody = `{"brokerDatas":[{"brokerAddrs":{0:"127.0.0.1:10911",1:"127.0.0.1:10921"},` +
	`"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},` +
	`"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}`

// fakeNameServer answers every request with code 0 and body, and counts the
// request codes it saw.
func fakeNameServer(t *testing.T, body string) (addr string, codes func() []int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				var lenBuf [4]byte
				if _, err := io.ReadFull(conn, lenBuf[:]); err != nil {
					return
				}
				frame := make([]byte, binary.BigEndian.Uint32(lenBuf[:]))
				if _, err := io.ReadFull(conn, frame); err != nil {
					return
				}
				var req struct {
					Code   int   `json:"code"`
					Opaque int32 `json:"opaque"`
				}
				hl := binary.BigEndian.Uint32(frame[:4]) & 0xFFFFFF
				if err := json.Unmarshal(frame[4:4+hl], &req); err != nil {
					return
				}
				mu.Lock()
				seen = append(seen, req.Code)
				mu.Unlock()
				hdr, _ := json.Marshal(map[string]any{"code": 0, "flag": 1, "opaque": req.Opaque, "language": "JAVA", "version": 317})
				out := make([]byte, 8, 8+len(hdr)+len(body))
				binary.BigEndian.PutUint32(out[0:], uint32(4+len(hdr)+len(body)))
				binary.BigEndian.PutUint32(out[4:], uint32(len(hdr)))
				out = append(append(out, hdr...), body...)
				_, _ = conn.Write(out)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().String(), func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), seen...)
	}
}

func TestSubscribeInitialize_reads_routes_in_the_Java_name_server_format(t *testing.T) {
	bodies := map[string]string{
		"unquoted ids, master first":  javaRouteBody,
		"unquoted ids, master second": strings.Replace(javaRouteBody, `{0:"127.0.0.1:10911",1:"127.0.0.1:10921"}`, `{1:"127.0.0.1:10921",0:"127.0.0.1:10911"}`, 1),
		"standard JSON":               strings.Replace(javaRouteBody, `{0:"127.0.0.1:10911",1:"127.0.0.1:10921"}`, `{"0":"127.0.0.1:10911"}`, 1),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			addr, codes := fakeNameServer(t, body)
			sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: []string{addr}, ConsumerGroup: "g"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if err := sub.SubscribeInitialize("orders"); err != nil {
				t.Fatalf("SubscribeInitialize: %v", err)
			}
			// Both routes (topic and retry topic) were found: no topic creation.
			for _, c := range codes() {
				if c != 105 {
					t.Errorf("request code %d sent, want only route look-ups (105)", c)
				}
			}
		})
	}
}

func TestSubscribeInitialize_reports_an_unreachable_name_server_as_retryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	sub, err := rocketmq.NewSubscriber(rocketmq.SubscriberConfig{NameServers: []string{addr}, ConsumerGroup: "g"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := sub.SubscribeInitialize("orders"); !rocketmq.IsRetryable(err) {
		t.Fatalf("SubscribeInitialize = %v, want a retryable error", err)
	}
}

// upperMarshaler is a custom Marshaler that forgets the adapter's rules.
type upperMarshaler struct{ rocketmq.DefaultMarshaler }

func (upperMarshaler) Marshal(topic string, msg *message.Message) (*primitive.Message, error) {
	out := primitive.NewMessage(topic, msg.Payload)
	out.WithProperties(map[string]string{"bad": "a\x02b"})
	return out, nil
}

func TestPublisher_checks_properties_from_a_custom_marshaler(t *testing.T) {
	addr, codes := fakeNameServer(t, javaRouteBody)
	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{addr}, Marshaler: upperMarshaler{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	err = pub.Publish("orders", message.NewMessage("u", []byte("x")))
	if !errors.Is(err, rocketmq.ErrInvalidMetadata) {
		t.Fatalf("Publish = %v, want ErrInvalidMetadata", err)
	}
	if n := len(codes()); n != 0 {
		t.Errorf("%d requests reached the name server, want none", n)
	}
}

func TestSendError_message_names_topic_message_and_code(t *testing.T) {
	err := &rocketmq.SendError{Topic: "orders", MessageUUID: "u-1", Code: 2, Err: rocketmq.ErrBrokerUnavailable}
	want := `rocketmq: send to topic "orders" (message u-1) refused with code 2 failed: rocketmq: broker unavailable`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}
