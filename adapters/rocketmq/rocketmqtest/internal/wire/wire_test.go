package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

func sampleMessage() wire.Message {
	return wire.Message{
		QueueID: 3, Flag: 7, QueueOffset: 42, CommitLogOffset: 123456, SysFlag: 0,
		BornTimestamp: 1700000000123, BornHost: netip.MustParseAddrPort("10.1.2.3:5555"),
		StoreTimestamp: 1700000000456, StoreHost: netip.MustParseAddrPort("127.0.0.1:9876"),
		ReconsumeTimes: 2, Body: []byte("hello body"), Topic: "topic-a",
		Properties: wire.FormatProperties(map[string]string{"UNIQ_KEY": "ABC", "TAGS": "t1", "user": "v"}),
	}
}

func TestMessage_encoding_round_trips_through_the_client_decoder(t *testing.T) {
	m := sampleMessage()
	v6 := sampleMessage()
	v6.BornHost = netip.MustParseAddrPort("[2001:db8::1]:6000")
	v6.QueueOffset = 43
	data := append(m.Encode(), v6.Encode()...)

	got := primitive.DecodeMessage(data)
	if len(got) != 2 {
		t.Fatalf("client decoded %d messages, want 2", len(got))
	}
	c := got[0]
	if c.Topic != m.Topic || !bytes.Equal(c.Body, m.Body) || c.Queue.QueueId != 3 || c.QueueOffset != 42 ||
		c.CommitLogOffset != 123456 || c.ReconsumeTimes != 2 || c.Flag != 7 || c.BornTimestamp != m.BornTimestamp ||
		c.StoreTimestamp != m.StoreTimestamp || c.StoreHost != "127.0.0.1:9876" || c.BornHost != "10.1.2.3:5555" {
		t.Errorf("client decoded %v", c)
	}
	if c.MsgId != "ABC" || c.GetTags() != "t1" || c.GetProperty("user") != "v" {
		t.Errorf("properties decoded as MsgId=%q tags=%q user=%q", c.MsgId, c.GetTags(), c.GetProperty("user"))
	}
	if want := wire.OffsetMsgID(m.StoreHost, m.CommitLogOffset); c.OffsetMsgId != want {
		t.Errorf("client offset msg id %q, ours %q", c.OffsetMsgId, want)
	}
	if got[1].BornHost == "" || got[1].QueueOffset != 43 {
		t.Errorf("IPv6 born host message decoded as %v", got[1])
	}

	ours, err := wire.DecodeMessages(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	m.SysFlag = 0
	v6.SysFlag = wire.SysFlagBornHostV6
	if diff := cmp.Diff([]wire.Message{m, v6}, ours, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestBatch_body_written_by_the_client_decodes(t *testing.T) {
	m1 := primitive.NewMessage("t", []byte("one"))
	m1.WithTag("a")
	m2 := primitive.NewMessage("t", []byte("two"))
	m2.Flag = 5
	body := append(m1.Marshal(), m2.Marshal()...)
	entries, err := wire.DecodeBatch(body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(entries) != 2 || string(entries[0].Body) != "one" || wire.ParseProperties(entries[0].Properties)["TAGS"] != "a" ||
		string(entries[1].Body) != "two" || entries[1].Flag != 5 {
		t.Errorf("entries = %+v", entries)
	}
	if again, err := wire.DecodeBatch(wire.EncodeBatch(entries)); err != nil || len(again) != 2 {
		t.Errorf("re-encoded batch decodes to %d entries, %v", len(again), err)
	}
}

func TestDecoders_reject_bad_input_with_typed_errors(t *testing.T) {
	valid := sampleMessage()
	enc := valid.Encode()
	cases := []struct {
		name string
		run  func() error
		want error
	}{
		{"frame shorter than its header length", func() error {
			_, err := wire.DecodeFrame([]byte{0, 0, 0, 10, '{'})
			return err
		}, wire.ErrFrame},
		{"frame with bad JSON", func() error {
			_, err := wire.DecodeFrame(append([]byte{0, 0, 0, 3}, "{x}"...))
			return err
		}, wire.ErrFrame},
		{"frame with binary header codec", func() error {
			_, err := wire.DecodeFrame([]byte{1, 0, 0, 0})
			return err
		}, wire.ErrFrame},
		{"huge frame length", func() error {
			_, err := wire.ReadFrame(bytes.NewReader([]byte{0x7f, 0xff, 0xff, 0xff}), 1<<20)
			return err
		}, wire.ErrFrame},
		{"negative frame length", func() error {
			_, err := wire.ReadFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), 1<<20)
			return err
		}, wire.ErrFrame},
		{"truncated message", func() error {
			_, err := wire.DecodeMessages(enc[:len(enc)-1])
			return err
		}, wire.ErrMessage},
		{"message with a wrong total size", func() error {
			bad := append([]byte(nil), enc...)
			binary.BigEndian.PutUint32(bad, uint32(len(bad)-3))
			_, err := wire.DecodeMessages(bad)
			return err
		}, wire.ErrMessage},
		{"batch entry with a body longer than the entry", func() error {
			b := wire.EncodeBatch([]wire.BatchEntry{{Body: []byte("abc")}})
			binary.BigEndian.PutUint32(b[16:], 1000)
			_, err := wire.DecodeBatch(b)
			return err
		}, wire.ErrMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, tc.want) {
				t.Errorf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCommand_encoding_round_trips(t *testing.T) {
	in := &wire.Command{Code: 10, Language: "GO", Version: 317, Opaque: 9, Flag: 1, Remark: "r",
		ExtFields: map[string]string{"a": "b"}, Body: []byte("body")}
	frame, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := wire.ReadFrame(bytes.NewReader(frame), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out, err := wire.DecodeFrame(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestProperties_parse_like_the_client(t *testing.T) {
	got := wire.ParseProperties("a\x01b\x02bad\x02c\x01d\x01e\x02\x01x\x02k\x01\x02")
	want := map[string]string{"a": "b", "k": "", "": "x"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if s := wire.FormatProperties(map[string]string{"b": "2", "a": "1"}); s != "a\x011\x02b\x012\x02" {
		t.Errorf("format = %q", s)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	ok, _ := (&wire.Command{Code: 34, ExtFields: map[string]string{"k": "v"}, Body: []byte("{}")}).Encode()
	f.Add(ok[4:])
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{0, 0xff, 0xff, 0xff, '{'})
	f.Add(append([]byte{0, 0, 0, 20}, `{"extFields":{"a":1}}`...))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := wire.DecodeFrame(data)
		if err != nil {
			if !errors.Is(err, wire.ErrFrame) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// Whatever decodes must encode again and decode to the same command.
		frame, err := cmd.Encode()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := wire.DecodeFrame(frame[4:])
		if err != nil {
			t.Fatalf("decode of re-encoded frame: %v", err)
		}
		if again.Code != cmd.Code || again.Opaque != cmd.Opaque || !bytes.Equal(again.Body, cmd.Body) || len(again.ExtFields) != len(cmd.ExtFields) {
			t.Fatalf("re-encoded %+v decodes as %+v", cmd, again)
		}
	})
}

func FuzzDecodeMessages(f *testing.F) {
	m := sampleMessage()
	f.Add(m.Encode())
	v6 := sampleMessage()
	v6.StoreHost = netip.MustParseAddrPort("[::1]:1")
	f.Add(append(m.Encode(), v6.Encode()...))
	f.Add([]byte{0, 0, 0, 4})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := wire.DecodeMessages(data)
		if err != nil {
			if !errors.Is(err, wire.ErrMessage) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for _, m := range msgs {
			if len(m.Topic) > 255 || len(m.Properties) > 32767 {
				continue
			}
			again, err := wire.DecodeMessages(m.Encode())
			if err != nil || len(again) != 1 || again[0].Topic != m.Topic || !bytes.Equal(again[0].Body, m.Body) ||
				again[0].Properties != m.Properties || again[0].QueueOffset != m.QueueOffset {
				t.Fatalf("re-encode of %+v decodes to %+v, %v", m, again, err)
			}
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(wire.EncodeBatch([]wire.BatchEntry{{Flag: 1, Body: []byte("a"), Properties: "k\x01v\x02"}, {Body: nil}}))
	f.Add([]byte{0, 0, 0, 22})
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := wire.DecodeBatch(data)
		if err != nil {
			if !errors.Is(err, wire.ErrMessage) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := wire.DecodeBatch(wire.EncodeBatch(entries))
		if err != nil || len(again) != len(entries) {
			t.Fatalf("re-encoded batch: %d entries, %v", len(again), err)
		}
	})
}

// The Apache broker (fastjson) reads a number or a boolean where an ext
// field's string belongs; so does the embedded broker.
func TestDecodeFrame_takes_ext_values_that_are_not_strings_as_their_text(t *testing.T) {
	h := `{"code":105,"extFields":{"topic":5,"b":true,"s":"x","n":null,"o":{"k":1}}}`
	cmd, err := wire.DecodeFrame(append([]byte{0, 0, 0, byte(len(h))}, h...))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"topic": "5", "b": "true", "s": "x", "o": `{"k":1}`}
	if len(cmd.ExtFields) != len(want) {
		t.Errorf("ext fields %q, want %q", cmd.ExtFields, want)
	}
	for k, v := range want {
		if cmd.ExtFields[k] != v {
			t.Errorf("ext field %s = %q, want %q", k, cmd.ExtFields[k], v)
		}
	}
}
