package rocketmqtest

import (
	"strconv"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

// Transactional messages, as the Apache broker handles them: a prepared
// (half) message is stored in RMQ_SYS_TRANS_HALF_TOPIC, invisible to
// consumers, until END_TRANSACTION commits it to its real topic or rolls it
// back. A half message left undecided is checked back with
// CHECK_TRANSACTION_STATE at the producer group every
// Config.TransactionCheckInterval, at most Config.TransactionCheckMax times,
// then dropped.

const (
	halfTopic = "RMQ_SYS_TRANS_HALF_TOPIC"

	tranTypeMask     int32 = 0xC
	tranPreparedType int32 = 0x4
	tranCommitType   int32 = 0x8
	tranRollbackType int32 = 0xC

	propProducerGroup = "PGROUP"
)

type halfMsg struct {
	msg    *storedMsg
	checks int
}

func isPrepared(m *storedMsg) bool {
	return m.props[propTranMsg] == "true" && m.SysFlag&tranTypeMask == tranPreparedType
}

// storeHalf stores a prepared message and schedules its first check.
func (b *Broker) storeHalf(m *storedMsg, dest *topic, qid int) {
	m.props[propRealTopic] = dest.name
	m.props[propRealQID] = strconv.Itoa(qid)
	m.Properties = wire.FormatProperties(m.props)
	b.append(b.getTopic(halfTopic), 0, m)
	b.txMu.Lock()
	b.halves[m.CommitLogOffset] = &halfMsg{msg: m}
	b.txMu.Unlock()
	off := m.CommitLogOffset
	b.sched.after(b.cfg.TransactionCheckInterval, func() { b.checkHalf(off) })
}

func (b *Broker) handleEndTransaction(req *wire.Command) *wire.Command {
	off, err := strconv.ParseInt(req.ExtFields["commitLogOffset"], 10, 64)
	if err != nil {
		return errorResponse(RespSystemError, "bad commitLogOffset")
	}
	typ, _ := strconv.Atoi(req.ExtFields["commitOrRollback"])
	b.txMu.Lock()
	h := b.halves[off]
	if h != nil && (int32(typ) == tranCommitType || int32(typ) == tranRollbackType) {
		delete(b.halves, off)
	}
	b.txMu.Unlock()
	if h == nil {
		return errorResponse(RespSystemError, "find prepared transaction message failed")
	}
	if int32(typ) == tranCommitType {
		b.commitHalf(h.msg)
	}
	return okResponse()
}

func (b *Broker) commitHalf(half *storedMsg) {
	name := half.props[propRealTopic]
	qid, _ := strconv.Atoi(half.props[propRealQID])
	t := b.getTopic(name)
	if t == nil || qid < 0 || qid >= len(t.queues()) {
		return // the topic went away while the transaction was open
	}
	props := copyProperties(half.props, 0)
	delete(props, propTranMsg)
	m := &storedMsg{
		Message: wire.Message{
			Flag:           half.Flag,
			SysFlag:        half.SysFlag&^tranTypeMask | tranCommitType,
			BornTimestamp:  half.BornTimestamp,
			BornHost:       half.BornHost,
			ReconsumeTimes: half.ReconsumeTimes,
			Body:           half.Body,
		},
		props: props,
		tag:   props[propTags],
	}
	b.append(t, qid, m)
}

// checkHalf asks a producer of the half message's group for the state of
// its local transaction; the answer comes back as END_TRANSACTION.
func (b *Broker) checkHalf(off int64) {
	b.txMu.Lock()
	h := b.halves[off]
	if h != nil {
		h.checks++
		if h.checks > b.cfg.TransactionCheckMax {
			delete(b.halves, off)
			b.txMu.Unlock()
			b.logger.Info("dropping a half message never committed nor rolled back", watermill.LogFields{"commit_log_offset": off})
			return
		}
	}
	b.txMu.Unlock()
	if h == nil {
		return
	}
	defer b.sched.after(b.cfg.TransactionCheckInterval, func() { b.checkHalf(off) })

	group := h.msg.props[propProducerGroup]
	b.mu.RLock()
	var c *conn
	for _, pc := range b.producers[group] {
		c = pc
		break
	}
	b.mu.RUnlock()
	if c == nil {
		return
	}
	view := h.msg.Message
	view.Topic = h.msg.props[propRealTopic]
	qid, _ := strconv.Atoi(h.msg.props[propRealQID])
	view.QueueID = int32(qid)
	c.send(&wire.Command{
		Code:   int32(CodeCheckTransactionState),
		Opaque: b.opaque.Add(1),
		Flag:   wire.FlagOneway,
		ExtFields: map[string]string{
			"tranStateTableOffset": strconv.FormatInt(h.msg.QueueOffset, 10),
			"commitLogOffset":      strconv.FormatInt(off, 10),
			"msgId":                h.msg.msgID,
			"transactionId":        h.msg.props[propUniqKey],
			"offsetMsgId":          h.msg.offID,
		},
		Body: view.Encode(),
	})
}
