package sqlstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
	"github.com/reliamq/reliamq/pkg/queue"
)

// MaxErrorLen is the longest error text kept in first_error and last_error;
// longer texts are cut at a rune boundary.
const MaxErrorLen = 4000

// Message is one stored row: the queue.Row of the queue interface that
// Store implements.
type Message = queue.Row

// FromMessage converts a Watermill message for topic into a row. Payload and
// metadata are copied.
func FromMessage(q, topic string, msg *message.Message) Message {
	return queue.FromMessage(q, topic, msg)
}

// ValidateTopic returns an error matching ErrInvalidTopic unless topic is 1 to
// 255 characters from [a-zA-Z0-9._%|:/-] (queue.ValidateTopic). The set covers
// RocketMQ, Kafka, NATS and AMQP routing names while keeping SQL and shell
// metacharacters out. The error is marked policy.Permanent.
func ValidateTopic(topic string) error {
	if err := queue.ValidateTopic(topic); err != nil {
		return policy.Permanent(err)
	}
	return nil
}

// ValidateQueue returns an error matching ErrInvalidQueue unless queue is at
// most 255 bytes of printable UTF-8 (queue.ValidateQueue). The empty queue is
// valid. The error is marked policy.Permanent.
func ValidateQueue(q string) error {
	if err := queue.ValidateQueue(q); err != nil {
		return policy.Permanent(err)
	}
	return nil
}

// ValidateMessage checks m as Insert does: queue, topic, UUID, attempts and
// metadata. It returns the same typed errors.
func ValidateMessage(m Message) error { return validateMessage(&m) }

func validateMessage(m *Message) error {
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
