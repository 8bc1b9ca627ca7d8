//go:build !race

package rocketmq_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq"
)

// brokerlessNameServer is a name server whose every broker is stopped, as a
// real cluster's during an outage: it knows no broker and no route at all,
// TBW102's included (rocketmqtest cannot show this: its name server and
// broker share one address and stop together).
func brokerlessNameServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serveBrokerless(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// serveBrokerless answers GET_ROUTEINFO_BY_TOPIC with TOPIC_NOT_EXIST,
// GET_BROKER_CLUSTER_INFO with an empty cluster, anything else with success.
func serveBrokerless(c net.Conn) {
	type header struct {
		Code     int    `json:"code"`
		Language string `json:"language"`
		Version  int    `json:"version"`
		Opaque   int32  `json:"opaque"`
		Flag     int    `json:"flag"`
		Remark   string `json:"remark"`
	}
	for {
		var prefix [8]byte
		if _, err := io.ReadFull(c, prefix[:]); err != nil {
			return
		}
		total := binary.BigEndian.Uint32(prefix[:4])
		hlen := binary.BigEndian.Uint32(prefix[4:]) & 0xFFFFFF
		if total < 4 || hlen > total-4 || total > 1<<20 {
			return
		}
		rest := make([]byte, total-4)
		if _, err := io.ReadFull(c, rest); err != nil {
			return
		}
		var req header
		if err := json.Unmarshal(rest[:hlen], &req); err != nil {
			return
		}
		resp := header{Language: "JAVA", Version: req.Version, Opaque: req.Opaque, Flag: 1}
		var body []byte
		switch req.Code {
		case 105: // GET_ROUTEINFO_BY_TOPIC
			resp.Code, resp.Remark = 17, "No topic route info in name server for the topic"
		case 106: // GET_BROKER_CLUSTER_INFO
			body = []byte(`{"brokerAddrTable":{},"clusterAddrTable":{}}`)
		}
		h, _ := json.Marshal(resp)
		frame := make([]byte, 8, 8+len(h)+len(body))
		binary.BigEndian.PutUint32(frame[:4], uint32(4+len(h)+len(body)))
		binary.BigEndian.PutUint32(frame[4:], uint32(len(h)))
		frame = append(append(frame, h...), body...)
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

// With every broker stopped the name servers know no route, TBW102's
// included; that is an outage, so a send is retryable (fallback stores the
// message, the relay keeps it), not a permanent ErrTopicNotExist.
func TestPublisher_no_route_while_no_broker_is_registered_is_retryable_not_ErrTopicNotExist(t *testing.T) {
	pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: []string{brokerlessNameServer(t)},
		SendTimeout: 2 * time.Second}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	err = pub.Publish(newTopic(), newMsg("x"))
	if err == nil || !rocketmq.IsRetryable(err) || errors.Is(err, rocketmq.ErrTopicNotExist) {
		t.Fatalf("Publish = %v, want a retryable error that is not ErrTopicNotExist", err)
	}
}
