// Package msgcheck holds the message rules that every reliamq publisher
// applies before it sends or stores anything: the RocketMQ publisher, the
// retry, fallback and async publishers, the SQL store and its publisher. One
// function decides, so a message is valid or invalid the same way through
// every layer: a message that one layer would accept and a later one refuse
// (a fallback row the relay can never send, for example) cannot exist.
//
// The rules are the intersection of what every backend and the SQL store can
// carry unchanged:
//   - the message is not nil;
//   - its UUID is not empty (consumers deduplicate on it, and a RocketMQ
//     subscriber would replace an empty one with the per-send message id), at
//     most MaxUUIDLength bytes of valid UTF-8 without control characters;
//   - metadata keys and values are valid UTF-8 without NUL (which the store's
//     JSON and PostgreSQL text cannot hold) and without the bytes \x01 and
//     \x02 (RocketMQ's property separators). Other control characters, such
//     as a newline, are allowed and travel unchanged.
//
// Topic rules depend on the backend and stay with it
// (rocketmq.ValidateTopic, sqlstore.ValidateTopic).
//
// Every error matches one of the sentinels below with errors.Is and is marked
// policy.Permanent: it is never retried or stored. The packages that call
// Check also wrap their own sentinel (rocketmq.ErrInvalidMetadata,
// sqlstore.ErrInvalidMessage, ...), so both match.
package msgcheck

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/pkg/policy"
)

// MaxUUIDLength is the longest message UUID, in bytes (the store's column).
const MaxUUIDLength = 255

// Sentinel errors.
var (
	// ErrNilMessage is returned for a nil message.
	ErrNilMessage = errors.New("reliamq: nil message")
	// ErrEmptyUUID is returned for a message whose UUID is "". A message
	// without an identity cannot be deduplicated: give it one with
	// watermill.NewUUID before publishing.
	ErrEmptyUUID = errors.New("reliamq: empty message UUID")
	// ErrInvalidUUID is returned for a UUID longer than MaxUUIDLength bytes,
	// or holding invalid UTF-8 or control characters.
	ErrInvalidUUID = errors.New("reliamq: invalid message UUID")
	// ErrInvalidMetadata is returned for a metadata key or value with invalid
	// UTF-8, NUL, \x01 or \x02.
	ErrInvalidMetadata = errors.New("reliamq: invalid metadata")
)

// Checker is implemented by publishers that can tell, without sending,
// whether they would refuse a Publish call as bad input (rocketmq.Publisher).
// A component that keeps messages for such a publisher to send later
// (sqlstore.PublisherConfig.Checker) asks it first, so that it never keeps a
// message the publisher would refuse: such a row could only be poisoned.
type Checker interface {
	// Check returns the error Publish(topic, msgs...) would return for bad
	// input, or nil.
	Check(topic string, msgs ...*message.Message) error
}

// Message checks one message against the rules of the package documentation.
func Message(msg *message.Message) error {
	if msg == nil {
		return policy.Permanent(ErrNilMessage)
	}
	if err := UUID(msg.UUID); err != nil {
		return err
	}
	return Metadata(msg.Metadata)
}

// Messages checks every message of a Publish call and names the position of
// the first bad one.
func Messages(msgs []*message.Message) error {
	for i, m := range msgs {
		if err := Message(m); err != nil {
			if len(msgs) == 1 {
				return err
			}
			return policy.Permanent(fmt.Errorf("message %d of %d: %w", i, len(msgs), err))
		}
	}
	return nil
}

// UUID checks a message UUID.
func UUID(uuid string) error {
	if uuid == "" {
		return policy.Permanent(ErrEmptyUUID)
	}
	if len(uuid) > MaxUUIDLength {
		return policy.Permanent(fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidUUID, len(uuid), MaxUUIDLength))
	}
	if !utf8.ValidString(uuid) {
		return policy.Permanent(fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidUUID, truncate(uuid)))
	}
	if i := strings.IndexFunc(uuid, unicode.IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(uuid[i:])
		return policy.Permanent(fmt.Errorf("%w: %q holds control character %U", ErrInvalidUUID, truncate(uuid), r))
	}
	return nil
}

// Metadata checks every key and value of md.
func Metadata(md map[string]string) error {
	for k, v := range md {
		if err := text(k); err != nil {
			return policy.Permanent(fmt.Errorf("%w: key %q: %v", ErrInvalidMetadata, truncate(k), err))
		}
		if err := text(v); err != nil {
			return policy.Permanent(fmt.Errorf("%w: value of key %q: %v", ErrInvalidMetadata, truncate(k), err))
		}
	}
	return nil
}

// MetadataText checks one metadata key or value; the error matches
// ErrInvalidMetadata.
func MetadataText(s string) error {
	if err := text(s); err != nil {
		return policy.Permanent(fmt.Errorf("%w: %v", ErrInvalidMetadata, err))
	}
	return nil
}

// text reports NUL, \x01, \x02 or invalid UTF-8 in s.
func text(s string) error {
	if i := strings.IndexAny(s, "\x00\x01\x02"); i >= 0 {
		return fmt.Errorf("holds byte %#x at %d", s[i], i)
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	return nil
}

func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
