package msgcheck_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/pkg/msgcheck"
	"github.com/reliamq/reliamq/pkg/policy"
)

func msg(uuid string, md map[string]string) *message.Message {
	m := message.NewMessage(uuid, nil)
	for k, v := range md {
		m.Metadata.Set(k, v)
	}
	return m
}

func TestMessage_refuses_what_a_publisher_or_the_store_cannot_carry(t *testing.T) {
	cases := []struct {
		name string
		msg  *message.Message
		want error
	}{
		{"nil", nil, msgcheck.ErrNilMessage},
		{"empty UUID", msg("", nil), msgcheck.ErrEmptyUUID},
		{"UUID of 256 bytes", msg(strings.Repeat("a", 256), nil), msgcheck.ErrInvalidUUID},
		{"newline in UUID", msg("a\nb", nil), msgcheck.ErrInvalidUUID},
		{"DEL in UUID", msg("a\x7fb", nil), msgcheck.ErrInvalidUUID},
		{"invalid UTF-8 in UUID", msg("a\xffb", nil), msgcheck.ErrInvalidUUID},
		{"C1 control in UUID", msg("a\u0085b", nil), msgcheck.ErrInvalidUUID},
		{"NUL in a value", msg("u", map[string]string{"k": "a\x00b"}), msgcheck.ErrInvalidMetadata},
		{"separator 1 in a value", msg("u", map[string]string{"k": "a\x01b"}), msgcheck.ErrInvalidMetadata},
		{"separator 2 in a key", msg("u", map[string]string{"k\x02": "v"}), msgcheck.ErrInvalidMetadata},
		{"invalid UTF-8 in a key", msg("u", map[string]string{"k\xc3": "v"}), msgcheck.ErrInvalidMetadata},
		{"NUL after non-ASCII", msg("u", map[string]string{"k": "é\x00"}), msgcheck.ErrInvalidMetadata},
	}
	for _, c := range cases {
		err := msgcheck.Message(c.msg)
		if !errors.Is(err, c.want) || !policy.IsPermanent(err) {
			t.Errorf("%s: Message = %v; want a permanent %v", c.name, err, c.want)
		}
	}
}

func TestMessage_accepts_what_every_publisher_and_the_store_carry(t *testing.T) {
	for _, m := range []*message.Message{
		msg("0b9f2c1e-6f0e-4a55-9a59-5d1f8f0f4c1a", nil),
		msg(strings.Repeat("a", 255), nil),
		msg("ünïcode-id", map[string]string{"k": "line one\nline two\ttab\r", "ключ": "значение", "": ""}),
	} {
		if err := msgcheck.Message(m); err != nil {
			t.Errorf("Message(%q) = %v; want nil", m.UUID, err)
		}
	}
}

func TestMessages_names_the_position_of_the_bad_message(t *testing.T) {
	err := msgcheck.Messages([]*message.Message{msg("a", nil), msg("b", nil), msg("", nil)})
	if !errors.Is(err, msgcheck.ErrEmptyUUID) || !strings.Contains(err.Error(), "message 2 of 3") {
		t.Fatalf("Messages = %v; want ErrEmptyUUID naming message 2 of 3", err)
	}
}

func FuzzMetadataText_agrees_with_a_plain_definition(f *testing.F) {
	for _, s := range []string{"", "abc", "a\x00", "\x01", "é\x02", "\xff", "ok\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		bad := strings.ContainsAny(s, "\x00\x01\x02") || !utf8.ValidString(s)
		if err := msgcheck.MetadataText(s); (err != nil) != bad {
			t.Fatalf("MetadataText(%q) = %v; want bad=%v", s, err, bad)
		}
	})
}
