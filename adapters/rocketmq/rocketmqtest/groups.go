package rocketmqtest

import (
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

// group is a consumer group: its live members and, per member, the
// subscriptions of its last heartbeat. Pulls are filtered with the
// subscription of the most recently heard member that subscribes the topic:
// the Apache broker keeps one table per group, replaced by every heartbeat,
// which flips back and forth when members of one group subscribe different
// topics; keeping them per member gives the same filter without that churn.
type group struct {
	name    string
	members map[string]*member // by client id
}

type member struct {
	clientID string
	conn     *conn
	lastSeen time.Time
	subs     map[string]subscription
}

type subscription struct {
	expr    string
	expType string
	filter  filter
}

type heartbeatBody struct {
	ClientID     string `json:"clientID"`
	ProducerData []struct {
		GroupName string `json:"groupName"`
	} `json:"producerDataSet"`
	ConsumerData []struct {
		GroupName     string `json:"groupName"`
		MessageModel  string `json:"messageModel"`
		Subscriptions []struct {
			Topic     string `json:"topic"`
			SubString string `json:"subString"`
			ExpType   string `json:"expressionType"`
		} `json:"subscriptionDataSet"`
	} `json:"consumerDataSet"`
}

func (b *Broker) handleHeartbeat(c *conn, req *wire.Command) *wire.Command {
	var hb heartbeatBody
	if err := json.Unmarshal(req.Body, &hb); err != nil {
		return errorResponse(RespSystemError, "bad heartbeat body: "+err.Error())
	}
	if hb.ClientID != "" {
		c.addClient(hb.ClientID)
	}
	var changed []string
	now := b.cfg.Clock.Now()
	if hb.ClientID != "" && len(hb.ProducerData) > 0 {
		b.mu.Lock()
		for _, pd := range hb.ProducerData {
			if pd.GroupName == "" {
				continue
			}
			if b.producers[pd.GroupName] == nil {
				b.producers[pd.GroupName] = map[string]*conn{}
			}
			b.producers[pd.GroupName][hb.ClientID] = c
		}
		b.mu.Unlock()
	}
	for _, cd := range hb.ConsumerData {
		if cd.GroupName == "" || hb.ClientID == "" {
			continue
		}
		if validTopicName(retryPrefix + cd.GroupName) {
			b.ensureTopic(retryPrefix+cd.GroupName, 1)
		}
		b.mu.Lock()
		g := b.groups[cd.GroupName]
		if g == nil {
			g = &group{name: cd.GroupName, members: map[string]*member{}}
			b.groups[cd.GroupName] = g
		}
		m := g.members[hb.ClientID]
		isNew := m == nil || m.conn != c
		if m == nil {
			m = &member{clientID: hb.ClientID}
			g.members[hb.ClientID] = m
		}
		m.conn = c
		m.lastSeen = now
		// The heartbeat carries the member's whole subscription table: topics
		// it no longer names are dropped.
		subChanged := false
		subs := make(map[string]subscription, len(cd.Subscriptions))
		for _, s := range cd.Subscriptions {
			old, ok := m.subs[s.Topic]
			if !ok || old.expr != s.SubString || old.expType != s.ExpType {
				subChanged = true
			}
			subs[s.Topic] = subscription{expr: s.SubString, expType: s.ExpType, filter: parseFilter(s.SubString)}
		}
		if len(subs) != len(m.subs) {
			subChanged = true
		}
		m.subs = subs
		b.mu.Unlock()
		if isNew || subChanged {
			changed = append(changed, cd.GroupName)
		}
	}
	for _, g := range changed {
		b.notifyGroup(g)
	}
	resp := okResponse()
	return resp
}

// notifyGroup sends NOTIFY_CONSUMER_IDS_CHANGED to every member, so the
// clients rebalance at once instead of at their 20 s tick.
func (b *Broker) notifyGroup(name string) {
	b.mu.RLock()
	g := b.groups[name]
	var conns []*conn
	if g != nil {
		seen := map[*conn]bool{}
		for _, m := range g.members {
			if !seen[m.conn] {
				seen[m.conn] = true
				conns = append(conns, m.conn)
			}
		}
	}
	b.mu.RUnlock()
	for _, c := range conns {
		c.send(&wire.Command{
			Code:      int32(CodeNotifyConsumerIDsChanged),
			Opaque:    b.opaque.Add(1),
			Flag:      wire.FlagOneway,
			ExtFields: map[string]string{"consumerGroup": name},
		})
	}
}

// unregisterConn removes the connection's clients from every group, releases
// their queue locks and tells the remaining members.
func (b *Broker) unregisterConn(c *conn, clientIDs []string) {
	var changed []string
	b.mu.Lock()
	for name, members := range b.producers {
		for _, id := range clientIDs {
			if members[id] == c {
				delete(members, id)
			}
		}
		if len(members) == 0 {
			delete(b.producers, name)
		}
	}
	for name, g := range b.groups {
		removed := false
		for _, id := range clientIDs {
			if m := g.members[id]; m != nil && m.conn == c {
				delete(g.members, id)
				removed = true
			}
		}
		if removed {
			changed = append(changed, name)
		}
	}
	b.mu.Unlock()
	b.releaseLocks(clientIDs)
	for _, g := range changed {
		b.notifyGroup(g)
	}
}

// expireClients removes consumers whose last heartbeat naming their group
// is older than Config.ClientExpiry, then schedules the next scan.
func (b *Broker) expireClients() {
	now := b.cfg.Clock.Now()
	var changed []string
	b.mu.Lock()
	for name, g := range b.groups {
		removed := false
		for id, m := range g.members {
			if now.Sub(m.lastSeen) > b.cfg.ClientExpiry {
				delete(g.members, id)
				removed = true
			}
		}
		if removed {
			changed = append(changed, name)
		}
	}
	b.mu.Unlock()
	for _, g := range changed {
		b.notifyGroup(g)
	}
	b.sched.after(b.expiryScan(), b.expireClients)
}

func (b *Broker) expiryScan() time.Duration {
	return min(10*time.Second, max(b.cfg.ClientExpiry/4, time.Millisecond))
}

// groupFilter returns the filter of the group's subscription to the topic,
// and its expression type.
func (b *Broker) groupFilter(groupName, topicName string) (filter, string, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	g := b.groups[groupName]
	if g == nil {
		return filter{}, "", false
	}
	var best *member
	for _, m := range g.members {
		if _, ok := m.subs[topicName]; ok && (best == nil || m.lastSeen.After(best.lastSeen)) {
			best = m
		}
	}
	if best == nil {
		return filter{}, "", false
	}
	s := best.subs[topicName]
	return s.filter, s.expType, true
}

// isTagType reports whether an expression type filters by tag (the only
// kind this broker evaluates; an empty type means TAG).
func isTagType(expType string) bool { return expType == "" || expType == "TAG" }

func (b *Broker) handleConsumerList(req *wire.Command) *wire.Command {
	name := req.ExtFields["consumerGroup"]
	b.mu.RLock()
	ids := []string{}
	if g := b.groups[name]; g != nil {
		for id := range g.members {
			ids = append(ids, id)
		}
	}
	b.mu.RUnlock()
	sort.Strings(ids)
	body, _ := json.Marshal(map[string][]string{"consumerIdList": ids})
	resp := okResponse()
	resp.Body = body
	return resp
}

// Orderly consumption locks (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ). A lock expires
// after 60 s without renewal, as in the Apache broker, and is released at
// once when its client's connection closes.
const lockExpiry = 60 * time.Second

type lockKey struct {
	group, topic string
	queue        int
}

type lockEntry struct {
	clientID string
	until    time.Time
}

type mqJSON struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int    `json:"queueId"`
}

type lockBody struct {
	ConsumerGroup string   `json:"consumerGroup"`
	ClientID      string   `json:"clientId"`
	MQSet         []mqJSON `json:"mqSet"`
}

func (b *Broker) handleLock(req *wire.Command) *wire.Command {
	var body lockBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return errorResponse(RespSystemError, "bad lock body: "+err.Error())
	}
	ok := []mqJSON{}
	now := b.cfg.Clock.Now()
	b.lockMu.Lock()
	for _, mq := range body.MQSet {
		k := lockKey{body.ConsumerGroup, mq.Topic, mq.QueueID}
		e, held := b.locks[k]
		if !held || e.clientID == body.ClientID || now.After(e.until) {
			b.locks[k] = lockEntry{clientID: body.ClientID, until: now.Add(lockExpiry)}
			ok = append(ok, mq)
		}
	}
	b.lockMu.Unlock()
	data, _ := json.Marshal(map[string][]mqJSON{"lockOKMQSet": ok})
	resp := okResponse()
	resp.Body = data
	return resp
}

func (b *Broker) handleUnlock(req *wire.Command) *wire.Command {
	var body lockBody
	if err := json.Unmarshal(req.Body, &body); err != nil {
		return errorResponse(RespSystemError, "bad unlock body: "+err.Error())
	}
	b.lockMu.Lock()
	for _, mq := range body.MQSet {
		k := lockKey{body.ConsumerGroup, mq.Topic, mq.QueueID}
		if e, held := b.locks[k]; held && e.clientID == body.ClientID {
			delete(b.locks, k)
		}
	}
	b.lockMu.Unlock()
	return okResponse()
}

func (b *Broker) releaseLocks(clientIDs []string) {
	if len(clientIDs) == 0 {
		return
	}
	ids := map[string]bool{}
	for _, id := range clientIDs {
		ids[id] = true
	}
	b.lockMu.Lock()
	for k, e := range b.locks {
		if ids[e.clientID] {
			delete(b.locks, k)
		}
	}
	b.lockMu.Unlock()
}

// offsets of consumer groups.
type offsetKey struct {
	group, topic string
	queue        int
}

func (b *Broker) commitOffset(groupName, topicName string, qid int, off int64) {
	if groupName == "" || off < 0 {
		return
	}
	b.offMu.Lock()
	b.offsets[offsetKey{groupName, topicName, qid}] = off
	b.offMu.Unlock()
}

func (b *Broker) handleQueryOffset(req *wire.Command) *wire.Command {
	groupName, topicName := req.ExtFields["consumerGroup"], req.ExtFields["topic"]
	qid, err := strconv.Atoi(req.ExtFields["queueId"])
	if err != nil || groupName == "" || topicName == "" {
		return errorResponse(RespSystemError, "bad consumerGroup, topic or queueId")
	}
	b.offMu.Lock()
	off, ok := b.offsets[offsetKey{groupName, topicName, qid}]
	b.offMu.Unlock()
	if ok {
		return okResponse("offset", strconv.FormatInt(off, 10))
	}
	if b.cfg.NewGroupOffset == NewGroupOffsetZeroWhileYoung {
		// Every queue of this broker keeps its first message, so every
		// queue is "young" in the Apache broker's sense.
		return okResponse("offset", "0")
	}
	return errorResponse(RespQueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
}

func (b *Broker) handleUpdateOffset(req *wire.Command) *wire.Command {
	qid, err := strconv.Atoi(req.ExtFields["queueId"])
	off, err2 := strconv.ParseInt(req.ExtFields["commitOffset"], 10, 64)
	if err != nil || err2 != nil {
		return errorResponse(RespSystemError, "bad queueId or commitOffset")
	}
	b.commitOffset(req.ExtFields["consumerGroup"], req.ExtFields["topic"], qid, off)
	return okResponse()
}

// hasMembers reports whether a consumer group has a live member.
func (b *Broker) hasMembers(name string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	g := b.groups[name]
	return g != nil && len(g.members) > 0
}
