package queue

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Row is one stored message.
type Row struct {
	// ID is the row id, assigned by the store. Ignored by Insert.
	ID int64
	// Queue partitions one store between users ("" by default). Claim only
	// returns rows of the queue it asks for.
	Queue string
	// Topic the message is to be published to.
	Topic string
	// UUID is the Watermill message UUID; it never changes.
	UUID string
	// Payload is stored as is.
	Payload []byte
	// Metadata is stored as a JSON object.
	Metadata map[string]string
	// Attempts counts the failed sends recorded by Reschedule (0 on insert
	// unless set).
	Attempts int
	// NextAttemptAt is when the row becomes due; zero on Insert means now.
	NextAttemptAt time.Time
	// CreatedAt is when the row was first stored; zero on Insert means now.
	CreatedAt time.Time
	// FirstError is the error that led to the row (for example the send
	// error that made the fallback store it).
	FirstError string
	// LastError is the latest error recorded by Reschedule.
	LastError string
	// LeasedUntil and LeasedBy describe the current claim, if any. Read only.
	LeasedUntil time.Time
	LeasedBy    string
}

// FromMessage converts a Watermill message for topic into a row of queue.
// Payload and metadata are copied.
func FromMessage(queue, topic string, msg *message.Message) Row {
	r := Row{Queue: queue, Topic: topic}
	if msg == nil {
		return r
	}
	r.UUID = msg.UUID
	r.Payload = append([]byte{}, msg.Payload...)
	if len(msg.Metadata) > 0 {
		r.Metadata = make(map[string]string, len(msg.Metadata))
		for k, v := range msg.Metadata {
			r.Metadata[k] = v
		}
	}
	return r
}

// Rows converts msgs for topic into rows of queue. It returns an error
// matching ErrInvalidMessage for no messages or a nil one.
func Rows(queue, topic string, msgs []*message.Message) ([]Row, error) {
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%w: no messages", ErrInvalidMessage)
	}
	rows := make([]Row, len(msgs))
	for i, m := range msgs {
		if m == nil {
			return nil, fmt.Errorf("%w: message %d is nil", ErrInvalidMessage, i)
		}
		rows[i] = FromMessage(queue, topic, m)
	}
	return rows, nil
}

// ToMessage rebuilds the Watermill message with the stored UUID, payload and
// metadata.
func (r Row) ToMessage() *message.Message {
	msg := message.NewMessage(r.UUID, append([]byte{}, r.Payload...))
	for k, v := range r.Metadata {
		msg.Metadata.Set(k, v)
	}
	return msg
}

// TopicPattern is the pattern ValidateTopic applies.
const TopicPattern = `^[a-zA-Z0-9._%|:/-]{1,255}$`

var topicRe = regexp.MustCompile(TopicPattern)

// ValidateTopic returns an error matching ErrInvalidTopic unless topic is 1 to
// 255 characters from [a-zA-Z0-9._%|:/-]. The set covers RocketMQ, Kafka, NATS
// and AMQP routing names while keeping SQL and shell metacharacters out.
func ValidateTopic(topic string) error {
	if !topicRe.MatchString(topic) {
		return fmt.Errorf("%w: %q must match %s", ErrInvalidTopic, truncate(topic, 64), TopicPattern)
	}
	return nil
}

// ValidateQueue returns an error matching ErrInvalidQueue unless queue is at
// most 255 bytes of printable UTF-8. The empty queue is valid.
func ValidateQueue(queue string) error {
	if len(queue) > 255 || !utf8.ValidString(queue) || strings.IndexFunc(queue, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: %q: at most 255 bytes of printable UTF-8", ErrInvalidQueue, truncate(queue, 64))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
