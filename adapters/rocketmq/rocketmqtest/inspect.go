package rocketmqtest

import (
	"bytes"
	"compress/zlib"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

func isDLQTopic(name string) bool { return strings.HasPrefix(name, dlqPrefix) }

// StoredMessage is a copy of one stored message, for inspection.
type StoredMessage struct {
	Topic           string
	QueueID         int
	QueueOffset     int64
	CommitLogOffset int64
	// MsgID is what the consumer sees as MsgId: the UNIQ_KEY property when
	// present, else OffsetMsgID.
	MsgID string
	// OffsetMsgID is the broker's id of this stored copy (store host and
	// commit-log offset).
	OffsetMsgID    string
	Tags           string
	Keys           string
	Body           []byte // decompressed when the producer compressed it
	Properties     map[string]string
	ReconsumeTimes int
	Flag           int32
	SysFlag        int32
	BornTimestamp  time.Time
	StoreTimestamp time.Time
}

func (m *storedMsg) export() StoredMessage {
	props := make(map[string]string, len(m.props))
	for k, v := range m.props {
		props[k] = v
	}
	body := append([]byte(nil), m.Body...)
	if m.SysFlag&wire.SysFlagCompressed != 0 {
		if zr, err := zlib.NewReader(bytes.NewReader(m.Body)); err == nil {
			if plain, err := io.ReadAll(zr); err == nil {
				body = plain
			}
		}
	}
	return StoredMessage{
		Topic: m.topic, QueueID: int(m.QueueID), QueueOffset: m.QueueOffset,
		CommitLogOffset: m.CommitLogOffset, MsgID: m.msgID, OffsetMsgID: m.offID,
		Tags: m.props[propTags], Keys: m.props[propKeys], Body: body, Properties: props,
		ReconsumeTimes: int(m.ReconsumeTimes), Flag: m.Flag, SysFlag: m.SysFlag,
		BornTimestamp:  time.UnixMilli(m.BornTimestamp),
		StoreTimestamp: time.UnixMilli(m.StoreTimestamp),
	}
}

// Messages returns copies of every message stored in topic, ordered by
// queue and offset. It works for any topic, including %RETRY%<group>,
// %DLQ%<group> and SCHEDULE_TOPIC_XXXX (delayed messages, queue = level-1).
// An unknown topic gives nil.
func (b *Broker) Messages(topicName string) []StoredMessage {
	t := b.getTopic(topicName)
	if t == nil {
		return nil
	}
	queues := t.queues()
	var out []StoredMessage
	for _, q := range queues {
		q.mu.Lock()
		msgs := append([]*storedMsg(nil), q.msgs...)
		q.mu.Unlock()
		for _, m := range msgs {
			out = append(out, m.export())
		}
	}
	return out
}

// ConsumerOffsets returns the committed offsets of group on topic, by queue
// id (the offset of the next message to consume). Groups commit through
// pulls, every 5 s and at Shutdown.
func (b *Broker) ConsumerOffsets(group, topicName string) map[int]int64 {
	out := map[int]int64{}
	b.offMu.Lock()
	for k, v := range b.offsets {
		if k.group == group && k.topic == topicName {
			out[k.queue] = v
		}
	}
	b.offMu.Unlock()
	return out
}

// PendingDelayed is how many messages wait in the delay schedule.
func (b *Broker) PendingDelayed() int { return b.sched.pending() }

// Topics lists the topics the broker has, sorted.
func (b *Broker) Topics() []string {
	b.mu.RLock()
	out := make([]string, 0, len(b.topics))
	for n := range b.topics {
		out = append(out, n)
	}
	b.mu.RUnlock()
	sort.Strings(out)
	return out
}

// ConsumerGroupMembers lists the client ids currently registered in group.
func (b *Broker) ConsumerGroupMembers(group string) []string {
	b.mu.RLock()
	var out []string
	if g := b.groups[group]; g != nil {
		for id := range g.members {
			out = append(out, id)
		}
	}
	b.mu.RUnlock()
	sort.Strings(out)
	return out
}

// TopicConfig describes a topic for CreateTopic.
type TopicConfig struct {
	Name string
	// ReadQueues and WriteQueues default to Config.DefaultQueueNums.
	ReadQueues  int
	WriteQueues int
	// Perm is 6 (read and write) by default; 4 is read-only, 2 write-only.
	Perm  int
	Order bool
}

// CreateTopic creates a topic or updates its queue counts and permission,
// as the admin CREATE_TOPIC request does. Queues are never removed, so
// shrinking keeps existing messages readable through inspection.
func (b *Broker) CreateTopic(tc TopicConfig) {
	if tc.ReadQueues <= 0 {
		tc.ReadQueues = b.cfg.DefaultQueueNums
	}
	if tc.WriteQueues <= 0 {
		tc.WriteQueues = b.cfg.DefaultQueueNums
	}
	if tc.Perm == 0 {
		tc.Perm = permRW
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[tc.Name]
	if t == nil {
		t = newTopic(tc.Name, tc.ReadQueues, tc.WriteQueues, tc.Perm)
		b.topics[tc.Name] = t
	} else {
		t.read, t.write, t.perm = tc.ReadQueues, tc.WriteQueues, tc.Perm
		t.resize()
	}
	t.order = tc.Order
}

// DeleteTopic removes a topic, its messages and its consumer offsets.
func (b *Broker) DeleteTopic(name string) {
	if name == scheduleTopic {
		return
	}
	b.mu.Lock()
	t := b.topics[name]
	delete(b.topics, name)
	b.mu.Unlock()
	if t != nil {
		for _, q := range t.queues() {
			q.mu.Lock()
			for _, m := range q.msgs {
				b.index.Delete(m.CommitLogOffset)
			}
			q.mu.Unlock()
		}
	}
	b.offMu.Lock()
	for k := range b.offsets {
		if k.topic == name {
			delete(b.offsets, k)
		}
	}
	b.offMu.Unlock()
}
