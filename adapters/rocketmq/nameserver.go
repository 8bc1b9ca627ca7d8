package rocketmq

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"sync/atomic"
	"time"
)

// The client keeps its route table internal, and the admin API needs a broker
// address to create a topic. This file asks the name server directly, with
// the same remoting protocol (JSON header codec) the client uses.

const (
	reqGetRouteInfoByTopic  = 105
	reqGetBrokerClusterInfo = 106
	remotingVersion         = 317 // V4_0_5, what the Go client announces
)

var errNoRoute = errors.New("no route")

var opaqueSeq atomic.Int32

type remotingHeader struct {
	Code      int               `json:"code"`
	Language  string            `json:"language"`
	Version   int               `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int               `json:"flag"`
	Remark    string            `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
}

// invokeNameServer sends one request and returns the response code and body.
func invokeNameServer(ctx context.Context, addr string, code int, ext map[string]string) (int, []byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)

	hdr, err := json.Marshal(remotingHeader{Code: code, Language: "GO", Version: remotingVersion,
		Opaque: opaqueSeq.Add(1), ExtFields: ext})
	if err != nil {
		return 0, nil, err
	}
	frame := make([]byte, 8+len(hdr))
	binary.BigEndian.PutUint32(frame[0:], uint32(4+len(hdr)))
	binary.BigEndian.PutUint32(frame[4:], uint32(len(hdr))) // serialize type 0 = JSON
	copy(frame[8:], hdr)
	if _, err := conn.Write(frame); err != nil {
		return 0, nil, err
	}
	var lenBuf [4]byte
	if _, err := io.ReadFull(conn, lenBuf[:]); err != nil {
		return 0, nil, err
	}
	total := binary.BigEndian.Uint32(lenBuf[:])
	if total < 4 || total > 16<<20 {
		return 0, nil, fmt.Errorf("name server %s: bad frame length %d", addr, total)
	}
	buf := make([]byte, total)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return 0, nil, err
	}
	headerLen := binary.BigEndian.Uint32(buf[:4]) & 0xFFFFFF
	if int(headerLen) > len(buf)-4 {
		return 0, nil, fmt.Errorf("name server %s: bad header length %d", addr, headerLen)
	}
	var resp remotingHeader
	if err := json.Unmarshal(buf[4:4+headerLen], &resp); err != nil {
		return 0, nil, fmt.Errorf("name server %s: %w", addr, err)
	}
	return resp.Code, buf[4+headerLen:], nil
}

// brokerAddrsPattern finds the master address (broker id 0) in a brokerAddrs
// object. Java name servers write it as {0:"host:port"}, which is not valid
// JSON, so the body is scanned rather than decoded.
var brokerAddrsPattern = regexp.MustCompile(`"brokerAddrs"\s*:\s*\{\s*(?:[^}]*?[,\s])?(?:"0"|0)\s*:\s*"([^"]+)"`)

func masterAddrs(body []byte) []string {
	seen := map[string]struct{}{}
	var out []string
	for _, m := range brokerAddrsPattern.FindAllSubmatch(body, -1) {
		a := string(m[1])
		if _, ok := seen[a]; !ok {
			seen[a] = struct{}{}
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// topicRoute asks the name servers for topic's route and returns its master
// broker addresses, or errNoRoute when every name server says the topic does
// not exist.
func topicRoute(ctx context.Context, nameServers []string, topic string) ([]string, error) {
	var errs []error
	for _, ns := range nameServers {
		code, body, err := invokeNameServer(ctx, ns, reqGetRouteInfoByTopic, map[string]string{"topic": topic})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if code == codeTopicNotExist {
			errs = append(errs, errNoRoute)
			continue
		}
		if code != 0 {
			errs = append(errs, fmt.Errorf("name server %s answered code %d", ns, code))
			continue
		}
		if addrs := masterAddrs(body); len(addrs) > 0 {
			return addrs, nil
		}
		errs = append(errs, errNoRoute)
	}
	return nil, errors.Join(errs...)
}

// clusterMasters returns every master broker address the name servers know,
// from the cluster info, or failing that from the route of the default topic
// TBW102.
func clusterMasters(ctx context.Context, nameServers []string) ([]string, error) {
	var errs []error
	for _, ns := range nameServers {
		code, body, err := invokeNameServer(ctx, ns, reqGetBrokerClusterInfo, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if code == 0 {
			if addrs := masterAddrs(body); len(addrs) > 0 {
				return addrs, nil
			}
		}
	}
	addrs, err := topicRoute(ctx, nameServers, "TBW102")
	if err == nil {
		return addrs, nil
	}
	return nil, errors.Join(append(errs, err)...)
}
