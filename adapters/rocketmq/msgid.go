package rocketmq

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// The publisher gives every message its UNIQ_KEY property, the message id a
// consumer sees as MsgId (metadata.RocketMQMsgID), before the client would.
// The id has the layout of every RocketMQ client's (MessageClientIDSetter in
// the Java client): 16 bytes written as 32 upper-case hex characters,
//
//	host IPv4 (4) | process id (2) | instance (4) | ms since the month began, local time (4) | counter (2)
//
// The v2.1.2 client's own generator, primitive.CreateUniqID, counts whole
// seconds with a 16-bit counter, so its ids repeat once a process sends more
// than 65,536 messages in a second. This one counts milliseconds, as the Java
// client does, so it repeats only after 65,536 ids in one millisecond. It
// takes host and process from the client's ids and a random non-zero instance
// in place of the client's 0: its ids never equal those the client generates
// in the same process, and two processes with the same address and process
// id collide only if their instances do too.
type msgIDs struct {
	head    string // host, process and instance, in hex
	counter atomic.Uint32
}

// msgIDLen is the length of a message id.
const msgIDLen = 32

var messageIDs = newMsgIDs(primitive.CreateUniqID()[:12], nonZeroInstance())

func nonZeroInstance() uint32 {
	for {
		if v := rand.Uint32(); v != 0 {
			return v
		}
	}
}

// newMsgIDs builds a generator from the host and process part of a client id
// (12 hex characters) and an instance.
func newMsgIDs(hostPID string, instance uint32) *msgIDs {
	return &msgIDs{head: fmt.Sprintf("%s%08X", hostPID, instance)}
}

// next returns the id of a message sent at now.
func (g *msgIDs) next(now time.Time) string {
	local := now.Local()
	monthStart := time.Date(local.Year(), local.Month(), 1, 0, 0, 0, 0, time.Local)
	sinceMonth := uint32(now.Sub(monthStart).Milliseconds())
	return fmt.Sprintf("%s%08X%04X", g.head, sinceMonth, uint16(g.counter.Add(1)))
}
