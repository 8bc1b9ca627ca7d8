package rocketmqtest

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

// Topic names with a meaning to the broker.
const (
	autoCreateTopic = "TBW102"
	scheduleTopic   = "SCHEDULE_TOPIC_XXXX"
	retryPrefix     = "%RETRY%"
	dlqPrefix       = "%DLQ%"
)

// Topic permissions (PermName.java).
const (
	permWrite = 2
	permRead  = 4
	permRW    = permRead | permWrite
)

// Message property names the broker reads or writes.
const (
	propTags            = "TAGS"
	propKeys            = "KEYS"
	propDelay           = "DELAY"
	propRetryTopic      = "RETRY_TOPIC"
	propRealTopic       = "REAL_TOPIC"
	propRealQID         = "REAL_QID"
	propOriginMessageID = "ORIGIN_MESSAGE_ID"
	propUniqKey         = "UNIQ_KEY"
	propCluster         = "CLUSTER"
	propTranMsg         = "TRAN_MSG"
)

// storedMsg is immutable once stored; encoded is what pulls copy out.
type storedMsg struct {
	wire.Message
	topic   string
	props   map[string]string
	tag     string
	msgID   string
	offID   string
	encoded []byte
}

type queue struct {
	mu     sync.Mutex
	msgs   []*storedMsg
	notify chan struct{} // closed and replaced on every append
}

func newQueue() *queue { return &queue{notify: make(chan struct{})} }

// maxOffset is the offset the next message will get.
func (q *queue) maxOffset() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(len(q.msgs))
}

// topic fields other than qs are guarded by Broker.mu; qs is read without
// it on the send and pull paths, so growing it publishes a new slice.
type topic struct {
	name  string
	read  int
	write int
	perm  int
	order bool
	qs    atomic.Pointer[[]*queue] // max(read, write) queues; never shrinks
}

// queues returns the topic's queues; the slice must not be modified.
func (t *topic) queues() []*queue { return *t.qs.Load() }

func newTopic(name string, read, write, perm int) *topic {
	t := &topic{name: name, read: read, write: write, perm: perm}
	t.qs.Store(&[]*queue{})
	t.resize()
	return t
}

// resize grows the queue list to max(read, write); callers hold Broker.mu.
func (t *topic) resize() {
	old := t.queues()
	n := max(t.read, t.write)
	if len(old) >= n {
		return
	}
	grown := make([]*queue, n)
	copy(grown, old)
	for i := len(old); i < n; i++ {
		grown[i] = newQueue()
	}
	t.qs.Store(&grown)
}

// validTopicName mirrors TopicValidator: non-empty, at most 127 bytes, and
// only [%|a-zA-Z0-9_-].
func validTopicName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '%' || c == '|' || c == '_' || c == '-':
		default:
			return false
		}
	}
	return true
}

func isRetryTopic(name string) bool { return strings.HasPrefix(name, retryPrefix) }

// topicLocked returns the topic, creating retry and DLQ topics on demand
// (one queue each). It needs b.mu held for writing when create is true.
func (b *Broker) getTopic(name string) *topic {
	b.mu.RLock()
	t := b.topics[name]
	b.mu.RUnlock()
	return t
}

// ensureTopic returns the topic, creating it readable and writable with n
// queues if missing.
func (b *Broker) ensureTopic(name string, n int) (*topic, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t := b.topics[name]; t != nil {
		return t, false
	}
	t := newTopic(name, n, n, permRW)
	b.topics[name] = t
	return t, true
}

// append stores m (fields other than the queue position already set) into
// queue qid of t: it assigns the queue offset, commit-log offset and store
// time, encodes the message once and wakes held pulls.
func (b *Broker) append(t *topic, qid int, msgs ...*storedMsg) {
	q := t.queues()[qid]
	now := b.cfg.Clock.Now().UnixMilli()
	q.mu.Lock()
	for _, m := range msgs {
		m.topic = t.name
		m.Topic = t.name
		m.QueueID = int32(qid)
		m.QueueOffset = int64(len(q.msgs))
		m.StoreTimestamp = now
		m.StoreHost = b.storeHost
		if m.Properties == "" && len(m.props) > 0 {
			m.Properties = wire.FormatProperties(m.props)
		}
		size := int64(m.EncodedSize())
		m.CommitLogOffset = b.commitLog.Add(size) - size
		m.encoded = m.Encode()
		m.offID = wire.OffsetMsgID(b.storeHost, m.CommitLogOffset)
		m.msgID = m.props[propUniqKey]
		if m.msgID == "" {
			m.msgID = m.offID
		}
		q.msgs = append(q.msgs, m)
		b.index.Store(m.CommitLogOffset, m)
	}
	ch := q.notify
	q.notify = make(chan struct{})
	q.mu.Unlock()
	close(ch)
}

func (b *Broker) lookup(commitLogOffset int64) *storedMsg {
	v, ok := b.index.Load(commitLogOffset)
	if !ok {
		return nil
	}
	return v.(*storedMsg)
}

// filter decides which messages a pull returns.
type filter struct {
	all  bool
	tags map[string]struct{}
}

func parseFilter(expr string) filter {
	expr = strings.TrimSpace(expr)
	if expr == "" || expr == "*" {
		return filter{all: true}
	}
	f := filter{tags: map[string]struct{}{}}
	for _, t := range strings.Split(expr, "||") {
		if t = strings.TrimSpace(t); t != "" {
			f.tags[t] = struct{}{}
		}
	}
	if len(f.tags) == 0 {
		f.all = true
	}
	return f
}

func (f filter) match(m *storedMsg) bool {
	if f.all {
		return true
	}
	_, ok := f.tags[m.tag]
	return ok
}

// pull limits, as in the Apache broker's in-memory transfer limits.
const (
	maxPullBytes   = 256 << 10
	maxPullScanned = 16000
)

type readResult struct {
	parts   [][]byte // the stored encodings, shared, never modified
	found   int
	next    int64
	min     int64
	max     int64
	scanned int
}

func (q *queue) read(offset int64, maxNums int, f filter) readResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := readResult{min: 0, max: int64(len(q.msgs)), next: offset}
	if offset < 0 || offset >= r.max {
		return r
	}
	var sizes int
	i := offset
	for ; i < r.max && r.found < maxNums && r.scanned < maxPullScanned; i++ {
		m := q.msgs[i]
		r.scanned++
		if !f.match(m) {
			continue
		}
		if r.found > 0 && sizes+len(m.encoded) > maxPullBytes {
			break
		}
		sizes += len(m.encoded)
		r.found++
		r.parts = append(r.parts, m.encoded)
	}
	r.next = i
	return r
}

// copyProperties copies the properties of a stored message for a copy the
// broker makes (retry, dead letter, delay and timer re-puts, transaction
// commits), with room for extra more. Like the Apache broker, which decodes
// the stored properties string for every copy, it drops properties with an
// empty name or value: a batch message keeps them only until its first copy.
func copyProperties(src map[string]string, extra int) map[string]string {
	props := make(map[string]string, len(src)+extra)
	for k, v := range src {
		if k != "" && v != "" {
			props[k] = v
		}
	}
	return props
}

// dropEmptyProperties removes properties with an empty name or value, as the
// Apache broker's parse of a single send's properties does.
func dropEmptyProperties(props map[string]string) {
	for k, v := range props {
		if k == "" || v == "" {
			delete(props, k)
		}
	}
}
