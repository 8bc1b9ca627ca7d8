package sqlstore

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

// MaxErrorLen is the longest error text kept in first_error and last_error;
// longer texts are cut at a rune boundary.
const MaxErrorLen = 4000

var topicRe = regexp.MustCompile(`^[a-zA-Z0-9._%|:/-]{1,255}$`)

// Message is one stored row.
type Message struct {
	// ID is the row id, assigned by the database. Ignored by Insert.
	ID int64
	// Queue partitions one table between users ("" by default). Claim only
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

// FromMessage converts a Watermill message for topic into a row. Payload and
// metadata are copied.
func FromMessage(queue, topic string, msg *message.Message) Message {
	m := Message{Queue: queue, Topic: topic}
	if msg == nil {
		return m
	}
	m.UUID = msg.UUID
	m.Payload = append([]byte{}, msg.Payload...)
	if len(msg.Metadata) > 0 {
		m.Metadata = make(map[string]string, len(msg.Metadata))
		for k, v := range msg.Metadata {
			m.Metadata[k] = v
		}
	}
	return m
}

// ToMessage rebuilds the Watermill message with the stored UUID, payload and
// metadata.
func (m Message) ToMessage() *message.Message {
	msg := message.NewMessage(m.UUID, append([]byte{}, m.Payload...))
	for k, v := range m.Metadata {
		msg.Metadata.Set(k, v)
	}
	return msg
}

// ValidateTopic returns an error matching ErrInvalidTopic unless topic is 1 to
// 255 characters from [a-zA-Z0-9._%|:/-]. The set covers RocketMQ, Kafka, NATS
// and AMQP routing names while keeping SQL and shell metacharacters out.
func ValidateTopic(topic string) error {
	if !topicRe.MatchString(topic) {
		return invalid(ErrInvalidTopic, "%q must match %s", truncate(topic, 64), topicRe.String())
	}
	return nil
}

// ValidateQueue returns an error matching ErrInvalidQueue unless queue is at
// most 255 bytes of printable UTF-8. The empty queue is valid.
func ValidateQueue(queue string) error {
	if len(queue) > 255 || !printable(queue) {
		return invalid(ErrInvalidQueue, "%q: at most 255 bytes of printable UTF-8", truncate(queue, 64))
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Validate checks m as Insert does: queue, topic, UUID, attempts and
// metadata. It returns the same typed errors.
func (m Message) Validate() error { return m.validate() }

func (m *Message) validate() error {
	if err := ValidateQueue(m.Queue); err != nil {
		return err
	}
	if err := ValidateTopic(m.Topic); err != nil {
		return err
	}
	// The UUID and metadata rules every reliamq publisher shares (msgcheck),
	// so the store never keeps a row the broker publisher would refuse.
	if err := msgcheck.UUID(m.UUID); err != nil {
		return policy.Permanent(fmt.Errorf("%w: %w", ErrInvalidMessage, err))
	}
	if m.Attempts < 0 {
		return invalid(ErrInvalidMessage, "Attempts %d: must be >= 0", m.Attempts)
	}
	if err := msgcheck.Metadata(m.Metadata); err != nil {
		return policy.Permanent(fmt.Errorf("%w: %w", ErrInvalidMetadata, err))
	}
	return nil
}

func encodeMetadata(md map[string]string) (string, error) {
	if len(md) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(md)
	if err != nil {
		return "", invalid(ErrInvalidMetadata, "%v", err)
	}
	return string(b), nil
}

func decodeMetadata(s string) (map[string]string, error) {
	if s == "" || s == "{}" {
		return map[string]string{}, nil
	}
	md := map[string]string{}
	if err := json.Unmarshal([]byte(s), &md); err != nil {
		return nil, err
	}
	return md, nil
}

// cleanError makes error text storable in every dialect: valid UTF-8, no NUL
// (PostgreSQL text refuses it), at most MaxErrorLen bytes.
func cleanError(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	return truncate(s, MaxErrorLen)
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

func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}
