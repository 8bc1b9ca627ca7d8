package rocketmqtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

// brokerVersion is what responses carry as "version": what a 4.9.4 broker
// answers (401); the client only records it.
const brokerVersion = 401

func okResponse(kv ...string) *wire.Command {
	r := &wire.Command{Code: int32(RespSuccess)}
	if len(kv) > 0 {
		r.ExtFields = make(map[string]string, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			r.ExtFields[kv[i]] = kv[i+1]
		}
	}
	return r
}

func errorResponse(code ResponseCode, remark string) *wire.Command {
	return &wire.Command{Code: int32(code), Remark: remark}
}

// dispatch applies injected faults, then answers the request. Held pulls and
// delayed requests run on their own goroutine so one connection can carry
// many of them at once.
func (b *Broker) dispatch(c *conn, req *wire.Command) {
	code := RequestCode(req.Code)
	act := b.faults.check(code)
	if act.silence {
		return
	}
	if act.latency > 0 {
		b.goHandle(c, func() {
			t := time.NewTimer(act.latency)
			defer t.Stop()
			select {
			case <-t.C:
			case <-c.done:
				return
			case <-c.stop:
				return
			}
			b.respond(c, req, act)
		})
		return
	}
	b.respond(c, req, act)
}

// goHandle runs f on a goroutine that Stop waits for before it closes
// connections. Once the broker is stopping, f runs inline: it then sees the
// closed stop channel and answers at once.
func (b *Broker) goHandle(c *conn, f func()) {
	b.heldMu.Lock()
	select {
	case <-c.stop:
		b.heldMu.Unlock()
		f()
		return
	default:
	}
	b.heldWG.Add(1)
	b.heldMu.Unlock()
	go func() {
		defer b.heldWG.Done()
		f()
		c.flush()
	}()
}

func (b *Broker) respond(c *conn, req *wire.Command, act faultAction) {
	var resp *wire.Command
	if act.fail >= 0 {
		resp = errorResponse(act.fail, fmt.Sprintf("rocketmqtest: injected fault %d on request code %d", act.fail, req.Code))
	} else {
		resp = b.handle(c, req)
	}
	if resp == nil {
		return
	}
	b.reply(c, req, resp)
}

func (b *Broker) handle(c *conn, req *wire.Command) *wire.Command {
	switch RequestCode(req.Code) {
	case CodeGetRouteInfoByTopic:
		return b.handleRoute(req)
	case CodeHeartbeat:
		return b.handleHeartbeat(c, req)
	case CodeUnregisterClient:
		if id := req.ExtFields["clientID"]; id != "" {
			b.unregisterConn(c, []string{id})
		}
		return okResponse()
	case CodeSendMessage, CodeSendMessageV2, CodeSendBatchMessage, CodeSendReplyMessage:
		return b.handleSend(c, req)
	case CodePullMessage:
		b.handlePull(c, req)
		return nil
	case CodeQueryConsumerOffset:
		return b.handleQueryOffset(req)
	case CodeUpdateConsumerOffset:
		return b.handleUpdateOffset(req)
	case CodeGetMaxOffset, CodeGetMinOffset, CodeSearchOffsetByTimestamp:
		return b.handleOffsetQuery(req)
	case CodeGetConsumerListByGroup:
		return b.handleConsumerList(req)
	case CodeConsumerSendMsgBack:
		return b.handleSendBack(req)
	case CodeLockBatchMQ:
		return b.handleLock(req)
	case CodeUnlockBatchMQ:
		return b.handleUnlock(req)
	case CodeCreateTopic:
		return b.handleCreateTopic(req)
	case CodeDeleteTopicInBroker, CodeDeleteTopicInNameServer:
		return b.handleDeleteTopic(req)
	case CodeGetAllTopicListFromNameServer:
		return b.handleTopicList()
	case CodeEndTransaction:
		return b.handleEndTransaction(req)
	case CodeGetBrokerConfig:
		return b.handleBrokerConfig()
	case CodeGetBrokerClusterInfo:
		return b.handleClusterInfo()
	case CodeGetAllSubscriptionGroupConfig:
		return b.handleSubscriptionGroups()
	case CodeViewMessageByID:
		return b.handleViewMessage(req)
	case CodeQueryMessage:
		return b.handleQueryMessage(req)
	case CodeGetConsumerRunningInfo, CodeConsumeMessageDirectly:
		b.goHandle(c, func() { b.reply(c, req, b.forwardToConsumer(req)) })
		return nil
	}
	return errorResponse(RespRequestCodeNotSupported, fmt.Sprintf("request code %d not supported", req.Code))
}

// ---- routes and topics ----

type queueData struct {
	BrokerName     string `json:"brokerName"`
	ReadQueueNums  int    `json:"readQueueNums"`
	WriteQueueNums int    `json:"writeQueueNums"`
	Perm           int    `json:"perm"`
	TopicSysFlag   int    `json:"topicSysFlag"`
}

type brokerData struct {
	Cluster     string            `json:"cluster"`
	BrokerName  string            `json:"brokerName"`
	BrokerAddrs map[string]string `json:"brokerAddrs"`
}

type routeData struct {
	OrderTopicConf    string            `json:"orderTopicConf,omitempty"`
	QueueDatas        []queueData       `json:"queueDatas"`
	BrokerDatas       []brokerData      `json:"brokerDatas"`
	FilterServerTable map[string]string `json:"filterServerTable"`
}

func (b *Broker) brokerData() brokerData {
	return brokerData{
		Cluster:     b.cfg.ClusterName,
		BrokerName:  b.cfg.BrokerName,
		BrokerAddrs: map[string]string{"0": b.storeHost.String()},
	}
}

func (b *Broker) handleRoute(req *wire.Command) *wire.Command {
	name := req.ExtFields["topic"]
	t := b.getTopic(name)
	if t == nil && isRetryTopic(name) && validTopicName(name) {
		// The client resolves routes before its first heartbeat creates the
		// retry topic; answering on demand saves it a 20 s rebalance.
		t, _ = b.ensureTopic(name, 1)
	}
	if t == nil || name == scheduleTopic || name == halfTopic || name == timerTopic {
		return errorResponse(RespTopicNotExist, fmt.Sprintf("No topic route info in name server for the topic: %s", name))
	}
	b.mu.RLock()
	qd := queueData{BrokerName: b.cfg.BrokerName, ReadQueueNums: t.read, WriteQueueNums: t.write, Perm: t.perm}
	b.mu.RUnlock()
	body, _ := json.Marshal(routeData{
		QueueDatas:        []queueData{qd},
		BrokerDatas:       []brokerData{b.brokerData()},
		FilterServerTable: map[string]string{},
	})
	resp := okResponse()
	resp.Body = body
	return resp
}

func atoiDefault(s string, def int) int {
	if v, err := strconv.Atoi(s); err == nil {
		return v
	}
	return def
}

func (b *Broker) handleCreateTopic(req *wire.Command) *wire.Command {
	name := req.ExtFields["topic"]
	if !validTopicName(name) {
		return errorResponse(RespSystemError, fmt.Sprintf("the specified topic %q is invalid", name))
	}
	if name == autoCreateTopic || name == scheduleTopic || name == halfTopic || name == timerTopic {
		return errorResponse(RespSystemError, fmt.Sprintf("the topic[%s] is conflict with system topic", name))
	}
	read := atoiDefault(req.ExtFields["readQueueNums"], b.cfg.DefaultQueueNums)
	write := atoiDefault(req.ExtFields["writeQueueNums"], b.cfg.DefaultQueueNums)
	perm := atoiDefault(req.ExtFields["perm"], permRW)
	if read <= 0 || write <= 0 || read > 1024 || write > 1024 {
		return errorResponse(RespSystemError, "queue numbers must be in 1..1024")
	}
	b.CreateTopic(TopicConfig{Name: name, ReadQueues: read, WriteQueues: write, Perm: perm, Order: req.ExtFields["order"] == "true"})
	return okResponse()
}

func (b *Broker) handleDeleteTopic(req *wire.Command) *wire.Command {
	b.DeleteTopic(req.ExtFields["topic"])
	return okResponse()
}

func (b *Broker) handleTopicList() *wire.Command {
	b.mu.RLock()
	names := make([]string, 0, len(b.topics))
	for n := range b.topics {
		if n != scheduleTopic && n != halfTopic && n != timerTopic {
			names = append(names, n)
		}
	}
	b.mu.RUnlock()
	sort.Strings(names)
	body, _ := json.Marshal(struct {
		TopicList  []string `json:"topicList"`
		BrokerAddr string   `json:"brokerAddr"`
	}{names, b.storeHost.String()})
	resp := okResponse()
	resp.Body = body
	return resp
}

func (b *Broker) handleClusterInfo() *wire.Command {
	bd := b.brokerData()
	body, _ := json.Marshal(map[string]any{
		"brokerAddrTable":  map[string]brokerData{bd.BrokerName: bd},
		"clusterAddrTable": map[string][]string{bd.Cluster: {bd.BrokerName}},
	})
	resp := okResponse()
	resp.Body = body
	return resp
}

func (b *Broker) handleSubscriptionGroups() *wire.Command {
	b.mu.RLock()
	table := map[string]any{}
	for name := range b.groups {
		table[name] = map[string]any{
			"groupName": name, "consumeEnable": true, "consumeFromMinEnable": true,
			"consumeBroadcastEnable": true, "retryMaxTimes": b.cfg.MaxReconsumeTimes, "retryQueueNums": 1,
		}
	}
	b.mu.RUnlock()
	body, _ := json.Marshal(map[string]any{
		"subscriptionGroupTable": table,
		"dataVersion":            map[string]any{"timestamp": b.cfg.Clock.Now().UnixMilli(), "counter": 0},
	})
	resp := okResponse()
	resp.Body = body
	return resp
}

func (b *Broker) handleViewMessage(req *wire.Command) *wire.Command {
	off, err := strconv.ParseInt(req.ExtFields["offset"], 10, 64)
	if err != nil {
		return errorResponse(RespSystemError, "bad offset")
	}
	m := b.lookup(off)
	if m == nil {
		return errorResponse(RespSystemError, fmt.Sprintf("no message at commit-log offset %d", off))
	}
	resp := okResponse()
	resp.Body = append([]byte(nil), m.encoded...)
	return resp
}

// pushReply delivers a reply message (SEND_REPLY_MESSAGE) to the requesting
// client named in its REPLY_TO_CLIENT property with
// PUSH_REPLY_MESSAGE_TO_CLIENT, as the Apache broker does; the message is
// also stored in its reply topic.
func (b *Broker) pushReply(m *storedMsg, h sendHeader) error {
	target := m.props["REPLY_TO_CLIENT"]
	var c *conn
	b.lifeMu.Lock()
	for cc := range b.conns {
		cc.mu.Lock()
		_, ok := cc.clientIDs[target]
		cc.mu.Unlock()
		if ok {
			c = cc
			break
		}
	}
	b.lifeMu.Unlock()
	if c == nil {
		return fmt.Errorf("push reply message fail, channel of <%s> not found", target)
	}
	c.send(&wire.Command{
		Code:   int32(CodePushReplyMessageToClient),
		Opaque: b.opaque.Add(1),
		ExtFields: map[string]string{
			"producerGroup":         h.group,
			"topic":                 m.topic,
			"defaultTopic":          autoCreateTopic,
			"defaultTopicQueueNums": strconv.Itoa(b.cfg.DefaultQueueNums),
			"queueId":               strconv.Itoa(int(m.QueueID)),
			"sysFlag":               strconv.Itoa(int(m.SysFlag)),
			"bornTimestamp":         strconv.FormatInt(m.BornTimestamp, 10),
			"flag":                  strconv.Itoa(int(m.Flag)),
			"properties":            m.Properties,
			"reconsumeTimes":        strconv.Itoa(int(m.ReconsumeTimes)),
			"unitMode":              "false",
			"bornHost":              m.BornHost.String(),
			"storeHost":             m.StoreHost.String(),
			"storeTimestamp":        strconv.FormatInt(m.StoreTimestamp, 10),
		},
		Body: m.Body,
	})
	return nil
}

// forwardToConsumer passes an admin request about one consumer
// (GET_CONSUMER_RUNNING_INFO, CONSUME_MESSAGE_DIRECTLY) to that consumer's
// connection and returns its answer, as the Apache broker does.
func (b *Broker) forwardToConsumer(req *wire.Command) *wire.Command {
	groupName, clientID := req.ExtFields["consumerGroup"], req.ExtFields["clientId"]
	b.mu.RLock()
	var c *conn
	if g := b.groups[groupName]; g != nil {
		if m := g.members[clientID]; m != nil {
			c = m.conn
		}
	}
	b.mu.RUnlock()
	if c == nil {
		return errorResponse(RespSystemError, fmt.Sprintf("The Consumer <%s> <%s> not online", groupName, clientID))
	}
	ext := make(map[string]string, len(req.ExtFields))
	for k, v := range req.ExtFields {
		ext[k] = v
	}
	resp, err := c.invoke(&wire.Command{Code: req.Code, Opaque: b.opaque.Add(1), ExtFields: ext, Body: req.Body}, 5*time.Second)
	if err != nil {
		return errorResponse(RespSystemError, fmt.Sprintf("consumer <%s> <%s>: %v", groupName, clientID, err))
	}
	return &wire.Command{Code: resp.Code, Remark: resp.Remark, ExtFields: resp.ExtFields, Body: resp.Body}
}

// handleQueryMessage finds messages of a topic by key (the KEYS property)
// or by UNIQ_KEY within a store-time range.
func (b *Broker) handleQueryMessage(req *wire.Command) *wire.Command {
	e := req.ExtFields
	t := b.getTopic(e["topic"])
	key := e["key"]
	maxNum := atoiDefault(e["maxNum"], 32)
	begin, _ := strconv.ParseInt(e["beginTimestamp"], 10, 64)
	end, err := strconv.ParseInt(e["endTimestamp"], 10, 64)
	if err != nil || end <= 0 {
		end = 1<<63 - 1
	}
	var parts [][]byte
	var lastTS, lastOff int64
	if t != nil && key != "" {
		queues := t.queues()
		for _, q := range queues {
			q.mu.Lock()
			for _, m := range q.msgs {
				if len(parts) >= maxNum {
					break
				}
				if m.StoreTimestamp < begin || m.StoreTimestamp > end {
					continue
				}
				if m.props[propUniqKey] == key || hasKey(m.props[propKeys], key) {
					parts = append(parts, m.encoded)
					lastTS, lastOff = max(lastTS, m.StoreTimestamp), max(lastOff, m.CommitLogOffset)
				}
			}
			q.mu.Unlock()
		}
	}
	if len(parts) == 0 {
		return errorResponse(RespQueryNotFound, "can not find message, maybe time range not correct")
	}
	resp := okResponse("indexLastUpdateTimestamp", strconv.FormatInt(lastTS, 10), "indexLastUpdatePhyoffset", strconv.FormatInt(lastOff, 10))
	resp.BodyParts = parts
	return resp
}

func hasKey(keys, key string) bool {
	for _, k := range strings.Fields(keys) {
		if k == key {
			return true
		}
	}
	return false
}

// ---- send ----

type sendHeader struct {
	group, topic            string
	defaultTopicQueueNums   int
	queueID                 int
	sysFlag, flag           int32
	bornTimestamp           int64
	properties              string
	reconsumeTimes          int32
	maxReconsumeTimes       int
	maxReconsumeTimesAbsent bool
}

func parseSendHeader(req *wire.Command) (sendHeader, error) {
	e := req.ExtFields
	get := func(long, short string) string {
		if v, ok := e[long]; ok {
			return v
		}
		return e[short]
	}
	var h sendHeader
	var err error
	h.group = get("producerGroup", "a")
	h.topic = get("topic", "b")
	h.defaultTopicQueueNums = atoiDefault(get("defaultTopicQueueNums", "d"), defaultQueueNums)
	if h.queueID, err = strconv.Atoi(get("queueId", "e")); err != nil {
		return h, fmt.Errorf("bad queueId: %w", err)
	}
	sys, err := strconv.ParseInt(get("sysFlag", "f"), 10, 32)
	if err != nil {
		return h, fmt.Errorf("bad sysFlag: %w", err)
	}
	h.sysFlag = int32(sys)
	h.bornTimestamp, _ = strconv.ParseInt(get("bornTimestamp", "g"), 10, 64)
	fl, _ := strconv.ParseInt(get("flag", "h"), 10, 32)
	h.flag = int32(fl)
	h.properties = get("properties", "i")
	rt, _ := strconv.ParseInt(get("reconsumeTimes", "j"), 10, 32)
	h.reconsumeTimes = int32(rt)
	mr := get("maxReconsumeTimes", "l")
	if h.maxReconsumeTimes, err = strconv.Atoi(mr); err != nil {
		h.maxReconsumeTimesAbsent = true
	}
	return h, nil
}

func (b *Broker) handleSend(c *conn, req *wire.Command) *wire.Command {
	h, err := parseSendHeader(req)
	if err != nil {
		return errorResponse(RespSystemError, err.Error())
	}
	if !validTopicName(h.topic) {
		return errorResponse(RespSystemError, fmt.Sprintf("the specified topic %q is invalid", h.topic))
	}
	if h.topic == scheduleTopic || h.topic == halfTopic || h.topic == timerTopic {
		return errorResponse(RespNoPermission, fmt.Sprintf("sending message to topic[%s] is forbidden", h.topic))
	}
	if len(req.Body) > b.cfg.MaxMessageSize {
		return errorResponse(RespMessageIllegal, fmt.Sprintf("message body of %d bytes exceeds the limit of %d", len(req.Body), b.cfg.MaxMessageSize))
	}
	batch := RequestCode(req.Code) == CodeSendBatchMessage

	// The producer's own DLQ path: a resend to a retry topic that has run out
	// of reconsume times goes to the group's DLQ.
	topicName := h.topic
	if isRetryTopic(topicName) && !batch {
		maxRe := h.maxReconsumeTimes
		if h.maxReconsumeTimesAbsent || maxRe <= 0 {
			maxRe = b.cfg.MaxReconsumeTimes
		}
		if int(h.reconsumeTimes) >= maxRe {
			topicName = dlqPrefix + strings.TrimPrefix(topicName, retryPrefix)
			b.ensureTopic(topicName, 1)
			h.queueID = 0
		}
	}

	t := b.getTopic(topicName)
	if t == nil {
		switch {
		case isRetryTopic(topicName):
			t, _ = b.ensureTopic(topicName, 1)
		case !b.cfg.DisableAutoCreateTopics:
			n := min(max(h.defaultTopicQueueNums, 1), b.cfg.DefaultQueueNums)
			var created bool
			t, created = b.ensureTopic(topicName, n)
			if created {
				b.logger.Debug("topic auto-created", map[string]any{"topic": topicName, "queues": n})
			}
		default:
			return errorResponse(RespTopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please!", topicName))
		}
	}
	b.mu.RLock()
	perm, writeQueues := t.perm, t.write
	b.mu.RUnlock()
	if perm&permWrite == 0 {
		return errorResponse(RespNoPermission, fmt.Sprintf("the topic[%s] sending message is forbidden", topicName))
	}
	if h.queueID < 0 {
		h.queueID = rand.IntN(writeQueues)
	}
	if h.queueID >= writeQueues {
		return errorResponse(RespSystemError, fmt.Sprintf("request queueId[%d] is illegal, topic has %d write queues", h.queueID, writeQueues))
	}

	var msgs []*storedMsg
	if batch {
		entries, err := wire.DecodeBatch(req.Body)
		if err != nil || len(entries) == 0 {
			// The Apache broker fails decoding with an exception, which it
			// answers SYSTEM_ERROR (the client retries it).
			if err == nil {
				err = errors.New("empty batch body")
			}
			return errorResponse(RespSystemError, fmt.Sprintf("bad batch body: %v", err))
		}
		for _, e := range entries {
			m, errResp := b.newMessage(c, h, e.Flag, e.Body, e.Properties, true)
			if errResp != nil {
				return errResp
			}
			msgs = append(msgs, m)
		}
	} else {
		m, errResp := b.newMessage(c, h, h.flag, req.Body, h.properties, false)
		if errResp != nil {
			return errResp
		}
		msgs = append(msgs, m)
	}

	level := 0
	if !batch {
		if v, err := strconv.Atoi(msgs[0].props[propDelay]); err == nil && v > 0 && msgs[0].props[propTranMsg] != "true" {
			level = v
		}
	}
	var timerAt time.Time
	timer := false
	if !batch && !isPrepared(msgs[0]) {
		var errResp *wire.Command
		if timerAt, timer, errResp = b.timerDue(msgs[0], level); errResp != nil {
			return errResp
		}
	}
	switch {
	case !batch && isPrepared(msgs[0]):
		b.storeHalf(msgs[0], t, h.queueID)
	case timer:
		b.storeTimer(msgs[0], t, h.queueID, timerAt)
	case level > 0:
		b.storeDelayed(msgs[0], t, h.queueID, level)
	default:
		b.append(t, h.queueID, msgs...)
	}
	if id := msgs[0].props["REPLY_TO_CLIENT"]; id != "" && RequestCode(req.Code) != CodeSendReplyMessage {
		// A request of request-reply: its client may not have sent a
		// heartbeat yet, so remember the connection the request came on.
		c.addClient(id)
	}
	if RequestCode(req.Code) == CodeSendReplyMessage {
		if err := b.pushReply(msgs[0], h); err != nil {
			return errorResponse(RespSystemError, err.Error())
		}
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.offID
	}
	resp := okResponse(
		"msgId", strings.Join(ids, ","),
		"queueId", strconv.Itoa(h.queueID),
		"queueOffset", strconv.FormatInt(msgs[0].QueueOffset, 10),
		"MSG_REGION", "DefaultRegion",
		"TRACE_ON", "true",
	)
	if id := msgs[0].props[propUniqKey]; id != "" && isPrepared(msgs[0]) {
		resp.ExtFields["transactionId"] = id
	}
	return resp
}

// newMessage builds the message to store from a send. A single send's
// properties are parsed and written again, as the Apache broker does, which
// drops properties with an empty name or value; the messages of a batch
// keep their properties as sent (until a retry copies them).
func (b *Broker) newMessage(c *conn, h sendHeader, flag int32, body []byte, props string, batch bool) (*storedMsg, *wire.Command) {
	if len(props) > 32767 {
		return nil, errorResponse(RespMessageIllegal, fmt.Sprintf("properties of %d bytes exceed 32767", len(props)))
	}
	pm := wire.ParseProperties(props)
	if !batch && wire.HasEmptyProperty(props) {
		dropEmptyProperties(pm)
		props = wire.FormatProperties(pm)
	}
	if pm[propCluster] == "" {
		pm[propCluster] = b.cfg.ClusterName
		if props != "" && props[len(props)-1] != wire.PropertySeparator {
			props += string(wire.PropertySeparator)
		}
		props += propCluster + string(wire.NameValueSeparator) + b.cfg.ClusterName + string(wire.PropertySeparator)
		if len(props) > 32767 {
			return nil, errorResponse(RespMessageIllegal, "properties exceed 32767 bytes")
		}
	}
	m := &storedMsg{
		Message: wire.Message{
			Flag:           flag,
			SysFlag:        h.sysFlag,
			BornTimestamp:  h.bornTimestamp,
			BornHost:       c.remote,
			ReconsumeTimes: h.reconsumeTimes,
			Body:           append([]byte(nil), body...),
			Properties:     props,
		},
		props: pm,
		tag:   pm[propTags],
	}
	return m, nil
}

// ---- pull ----

func (b *Broker) handlePull(c *conn, req *wire.Command) {
	e := req.ExtFields
	groupName, topicName := e["consumerGroup"], e["topic"]
	qid, err1 := strconv.Atoi(e["queueId"])
	offset, err2 := strconv.ParseInt(e["queueOffset"], 10, 64)
	if err1 != nil || err2 != nil || groupName == "" || topicName == "" {
		b.reply(c, req, errorResponse(RespSystemError, "bad consumerGroup, topic, queueId or queueOffset"))
		return
	}
	if b.stallOnRestart.Load() && !b.hasMembers(groupName) {
		// The Apache broker keeps consumer groups in memory only: after a
		// restart it knows a group again at the member's next heartbeat
		// (the client sends one every 30 s), and refuses its pulls until
		// then; the client retries a refused pull after 3 s.
		b.reply(c, req, errorResponse(RespSubscriptionNotExist, "the consumer's group info not exist"))
		return
	}
	maxNums := atoiDefault(e["maxMsgNums"], 32)
	if maxNums <= 0 {
		maxNums = 32
	}
	sysFlag := atoiDefault(e["sysFlag"], 0)
	t := b.getTopic(topicName)
	if t == nil {
		b.reply(c, req, errorResponse(RespTopicNotExist, fmt.Sprintf("topic[%s] not exist, apply first please!", topicName)))
		return
	}
	b.mu.RLock()
	perm, readQueues := t.perm, t.read
	b.mu.RUnlock()
	if perm&permRead == 0 {
		b.reply(c, req, errorResponse(RespNoPermission, fmt.Sprintf("the topic[%s] pulling message is forbidden", topicName)))
		return
	}
	if qid < 0 || qid >= readQueues || qid >= len(t.queues()) {
		b.reply(c, req, errorResponse(RespSystemError, fmt.Sprintf("queueId[%d] is illegal, topic has %d read queues", qid, readQueues)))
		return
	}
	if sysFlag&1 != 0 {
		if co, err := strconv.ParseInt(e["commitOffset"], 10, 64); err == nil {
			b.commitOffset(groupName, topicName, qid, co)
		}
	}
	var f filter
	expType := e["expressionType"]
	if expr := e["subscription"]; sysFlag&4 != 0 && expr != "" {
		f = parseFilter(expr)
	} else if gf, gt, ok := b.groupFilter(groupName, topicName); ok {
		f, expType = gf, gt
	} else {
		f = filter{all: true}
	}
	if !isTagType(expType) {
		// As an Apache broker without enablePropertyFilter.
		b.reply(c, req, errorResponse(RespSystemError, "The broker does not support consumer to filter message by "+expType))
		return
	}
	hold := b.cfg.LongPollHold
	if ms, err := strconv.ParseInt(e["suspendTimeoutMillis"], 10, 64); err == nil && ms > 0 && time.Duration(ms)*time.Millisecond < hold {
		hold = time.Duration(ms) * time.Millisecond
	}
	if sysFlag&2 == 0 || hold < 0 {
		hold = 0
	}
	q := t.queues()[qid]
	b.pullFrom(c, req, q, offset, maxNums, f, hold)
}

// reply answers req unless it was sent oneway (rocketmq-client-go never
// flags its requests oneway, Java clients do).
func (b *Broker) reply(c *conn, req *wire.Command, resp *wire.Command) {
	if req.IsOneway() {
		return
	}
	resp.Opaque = req.Opaque
	resp.Flag |= wire.FlagResponse
	resp.Version = brokerVersion
	c.write(resp)
}

func pullResponse(code ResponseCode, next, minOff, maxOff int64) *wire.Command {
	return &wire.Command{Code: int32(code), ExtFields: map[string]string{
		"nextBeginOffset":      strconv.FormatInt(next, 10),
		"minOffset":            strconv.FormatInt(minOff, 10),
		"maxOffset":            strconv.FormatInt(maxOff, 10),
		"suggestWhichBrokerId": "0",
	}}
}

func (b *Broker) pullFrom(c *conn, req *wire.Command, q *queue, offset int64, maxNums int, f filter, hold time.Duration) {
	r := q.read(offset, maxNums, f)
	switch {
	case r.found > 0:
		resp := pullResponse(RespSuccess, r.next, r.min, r.max)
		resp.BodyParts = r.parts
		b.reply(c, req, resp)
		return
	case r.scanned > 0:
		b.reply(c, req, pullResponse(RespPullRetryImmediately, r.next, r.min, r.max))
		return
	case offset < r.min:
		b.reply(c, req, pullResponse(RespPullOffsetMoved, r.min, r.min, r.max))
		return
	case offset > r.max || (r.max == 0 && offset != 0):
		b.reply(c, req, pullResponse(RespPullOffsetMoved, r.max, r.min, r.max))
		return
	}
	if hold <= 0 {
		b.reply(c, req, pullResponse(RespPullNotFound, offset, r.min, r.max))
		return
	}
	// Long poll: wait for an append to this queue, the hold, or shutdown, on
	// a goroutine of its own so the connection keeps serving other requests.
	q.mu.Lock()
	ch := q.notify
	grown := int64(len(q.msgs)) > offset
	q.mu.Unlock()
	if grown {
		b.pullFrom(c, req, q, offset, maxNums, f, 0)
		return
	}
	b.goHandle(c, func() {
		t := time.NewTimer(hold)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		case <-c.done:
			return
		case <-c.stop:
			if b.stallOnRestart.Load() {
				// As the Apache broker: the held pull is never answered,
				// its connection closes, and the client waits its 30 s
				// pull timeout.
				return
			}
			b.reply(c, req, errorResponse(RespServiceNotAvailable, "broker is stopping"))
			return
		}
		b.pullFrom(c, req, q, offset, maxNums, f, 0)
	})
}

// ---- offsets by position and time ----

func (b *Broker) handleOffsetQuery(req *wire.Command) *wire.Command {
	t := b.getTopic(req.ExtFields["topic"])
	qid, err := strconv.Atoi(req.ExtFields["queueId"])
	if err != nil {
		return errorResponse(RespSystemError, "bad queueId")
	}
	if t == nil || qid < 0 || qid >= len(t.queues()) {
		// The Apache broker answers offset 0 for queues it does not have.
		return okResponse("offset", "0")
	}
	q := t.queues()[qid]
	switch RequestCode(req.Code) {
	case CodeGetMinOffset:
		return okResponse("offset", "0")
	case CodeGetMaxOffset:
		return okResponse("offset", strconv.FormatInt(q.maxOffset(), 10))
	}
	ts, err := strconv.ParseInt(req.ExtFields["timestamp"], 10, 64)
	if err != nil {
		return errorResponse(RespSystemError, "bad timestamp")
	}
	q.mu.Lock()
	n := len(q.msgs)
	i := sort.Search(n, func(i int) bool { return q.msgs[i].StoreTimestamp >= ts })
	q.mu.Unlock()
	return okResponse("offset", strconv.Itoa(i))
}

// ---- consumer send-back ----

func (b *Broker) handleSendBack(req *wire.Command) *wire.Command {
	e := req.ExtFields
	groupName := e["group"]
	off, err := strconv.ParseInt(e["offset"], 10, 64)
	if err != nil || !validTopicName(retryPrefix+groupName) || !validTopicName(dlqPrefix+groupName) {
		return errorResponse(RespSystemError, "bad group or offset")
	}
	level := atoiDefault(e["delayLevel"], 0)
	maxRe, err := strconv.Atoi(e["maxReconsumeTimes"])
	if err != nil {
		maxRe = b.cfg.MaxReconsumeTimes
	}
	orig := b.lookup(off)
	if orig == nil {
		return errorResponse(RespSystemError, fmt.Sprintf("look message by offset failed, %d", off))
	}
	props := copyProperties(orig.props, 3)
	if props[propRetryTopic] == "" {
		props[propRetryTopic] = orig.topic
	}
	if props[propOriginMessageID] == "" {
		props[propOriginMessageID] = orig.offID
	}
	delete(props, propDelay)
	var t *topic
	if int(orig.ReconsumeTimes) >= maxRe || level < 0 {
		t, _ = b.ensureTopic(dlqPrefix+groupName, 1)
		level = 0
	} else {
		t, _ = b.ensureTopic(retryPrefix+groupName, 1)
		if level == 0 {
			level = 3 + int(orig.ReconsumeTimes)
		}
	}
	m := &storedMsg{
		Message: wire.Message{
			Flag:           orig.Flag,
			SysFlag:        orig.SysFlag,
			BornTimestamp:  orig.BornTimestamp,
			BornHost:       orig.BornHost,
			ReconsumeTimes: orig.ReconsumeTimes + 1,
			Body:           orig.Body,
		},
		props: props,
		tag:   props[propTags],
	}
	if level > 0 {
		b.storeDelayed(m, t, 0, level)
	} else {
		b.append(t, 0, m)
	}
	return okResponse()
}
