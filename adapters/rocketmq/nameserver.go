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
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
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

// invokeNameServer sends one request on a connection of its own and returns
// the response code and body.
func invokeNameServer(ctx context.Context, addr string, code int, ext map[string]string) (int, []byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	return roundTrip(ctx, conn, addr, code, ext)
}

// roundTrip sends one request on conn and reads its answer. Name servers
// answer the requests of a connection in order.
func roundTrip(ctx context.Context, conn net.Conn, addr string, code int, ext map[string]string) (int, []byte, error) {
	deadline := time.Now().Add(5 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)

	opaque := opaqueSeq.Add(1)
	hdr, err := json.Marshal(remotingHeader{Code: code, Language: "GO", Version: remotingVersion,
		Opaque: opaque, ExtFields: ext})
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
	if resp.Opaque != opaque {
		return 0, nil, fmt.Errorf("name server %s: answer %d to request %d", addr, resp.Opaque, opaque)
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

// topicRouteInfo is the part of a topic's route the failover code needs.
type topicRouteInfo struct {
	// Masters maps each broker name of the topic to its master address
	// (broker id 0); a broker whose master is down is absent.
	Masters map[string]string
	// Queues maps each broker name to its queue data.
	Queues map[string]queueData
}

type queueData struct {
	ReadQueueNums  int `json:"readQueueNums"`
	WriteQueueNums int `json:"writeQueueNums"`
	Perm           int `json:"perm"`
}

const (
	permRead  = 4
	permWrite = 2
)

// readQueues returns the topic's readable queues of the brokers whose master
// is up, as the client lists them for a consumer, sorted by broker and id.
func (r *topicRouteInfo) readQueues(topic string) []*primitive.MessageQueue {
	names := make([]string, 0, len(r.Queues))
	for name := range r.Queues {
		names = append(names, name)
	}
	sort.Strings(names)
	var mqs []*primitive.MessageQueue
	for _, name := range names {
		q := r.Queues[name]
		if q.Perm&permRead == 0 || r.Masters[name] == "" {
			continue
		}
		for i := 0; i < q.ReadQueueNums; i++ {
			mqs = append(mqs, &primitive.MessageQueue{Topic: topic, BrokerName: name, QueueId: i})
		}
	}
	return mqs
}

// parseRoute decodes a TopicRouteData body. Java name servers write broker ids
// as bare numeric object keys ({0:"addr"}), which quoteNumericKeys fixes
// first.
func parseRoute(body []byte) (*topicRouteInfo, error) {
	var raw struct {
		QueueDatas []struct {
			BrokerName string `json:"brokerName"`
			queueData
		} `json:"queueDatas"`
		BrokerDatas []struct {
			BrokerName  string            `json:"brokerName"`
			BrokerAddrs map[string]string `json:"brokerAddrs"`
		} `json:"brokerDatas"`
	}
	if err := json.Unmarshal(quoteNumericKeys(body), &raw); err != nil {
		return nil, fmt.Errorf("decode route: %w", err)
	}
	r := &topicRouteInfo{Masters: map[string]string{}, Queues: map[string]queueData{}}
	for _, b := range raw.BrokerDatas {
		if a := b.BrokerAddrs["0"]; a != "" {
			r.Masters[b.BrokerName] = a
		}
	}
	for _, q := range raw.QueueDatas {
		r.Queues[q.BrokerName] = q.queueData
	}
	return r, nil
}

// quoteNumericKeys puts quotes around object keys that are bare integers
// (fastjson's map keys), leaving strings untouched.
func quoteNumericKeys(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	inString, escaped := false, false
	expectKey := false // after '{' or ',' outside strings
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch {
		case c == '"':
			inString, expectKey = true, false
		case c == '{' || c == ',':
			expectKey = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		case expectKey && (c == '-' || c >= '0' && c <= '9'):
			j := i + 1
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			k := j
			for k < len(b) && (b[k] == ' ' || b[k] == '\t' || b[k] == '\n' || b[k] == '\r') {
				k++
			}
			if k < len(b) && b[k] == ':' {
				out = append(out, '"')
				out = append(out, b[i:j]...)
				out = append(out, '"')
				i = j - 1
				expectKey = false
				continue
			}
			expectKey = false
		default:
			expectKey = false
		}
		out = append(out, c)
	}
	return out
}

// nameServerConn asks the name servers over connections it keeps, for the
// periodic route checks of subscriptions and publishers. It is safe for
// concurrent use; requests are serialised.
type nameServerConn struct {
	addrs []string

	mu    sync.Mutex
	conns map[string]net.Conn
	next  int // the name server to ask first
}

func newNameServerConn(addrs []string) *nameServerConn {
	return &nameServerConn{addrs: addrs, conns: map[string]net.Conn{}}
}

// route returns topic's route from the first name server that answers, or
// errNoRoute when the one that answered says the topic has none.
func (n *nameServerConn) route(ctx context.Context, topic string) (*topicRouteInfo, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for i := range n.addrs {
		addr := n.addrs[(n.next+i)%len(n.addrs)]
		code, body, err := n.invokeLocked(ctx, addr, reqGetRouteInfoByTopic, map[string]string{"topic": topic})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n.next = (n.next + i) % len(n.addrs)
		switch code {
		case 0:
			return parseRoute(body)
		case codeTopicNotExist:
			return nil, errNoRoute
		default:
			return nil, fmt.Errorf("name server %s answered code %d", addr, code)
		}
	}
	if len(errs) == 0 {
		return nil, errors.New("no name server")
	}
	return nil, errors.Join(errs...)
}

func (n *nameServerConn) invokeLocked(ctx context.Context, addr string, code int, ext map[string]string) (int, []byte, error) {
	conn := n.conns[addr]
	if conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return 0, nil, err
		}
		conn = c
		n.conns[addr] = c
	}
	rc, body, err := roundTrip(ctx, conn, addr, code, ext)
	if err != nil {
		_ = conn.Close()
		delete(n.conns, addr)
	}
	return rc, body, err
}

// close closes the kept connections.
func (n *nameServerConn) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for addr, c := range n.conns {
		_ = c.Close()
		delete(n.conns, addr)
	}
}
