package redelivery

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/go-cmp/cmp"
)

func TestPackMessage_round_trips_and_is_sized_exactly(t *testing.T) {
	for _, tc := range []struct {
		uuid    string
		md      message.Metadata
		payload []byte
	}{
		{uuid: "", md: message.Metadata{}, payload: []byte{}},
		{uuid: "u1", md: message.Metadata{"k": "v"}, payload: []byte(`{"a":1}`)},
		{uuid: "ü-✓", md: message.Metadata{"": "", "empty": "", "unicode ключ": "значение ✓", "nul\x00": "\x00\x01\x02"}, payload: []byte{0, 1, 2, 0xff}},
		{uuid: strings.Repeat("u", 200), md: message.Metadata{"long": strings.Repeat("x", 300), strings.Repeat("k", 20000): "v"}, payload: make([]byte, 1<<20)},
	} {
		in := message.NewMessage(tc.uuid, tc.payload)
		in.Metadata = tc.md
		b := packMessage(in)
		if len(b) != cap(b) {
			t.Errorf("packed into %d bytes with capacity %d", len(b), cap(b))
		}
		out := unpackMessage(b)
		if out.UUID != tc.uuid || string(out.Payload) != string(tc.payload) {
			t.Errorf("uuid %q payload %d bytes, want %q and %d bytes", out.UUID, len(out.Payload), tc.uuid, len(tc.payload))
		}
		if diff := cmp.Diff(map[string]string(tc.md), map[string]string(out.Metadata)); diff != "" {
			t.Errorf("metadata (-want +got):\n%s", diff)
		}
		if out.Payload = append(out.Payload, 'x'); len(b) != cap(b) || len(out.Payload) != len(tc.payload)+1 {
			t.Errorf("appending to the payload must not write into the packed bytes")
		}
	}
}

func TestUnpackMessage_copies_the_strings_in_one_allocation(t *testing.T) {
	in := message.NewMessage("order-1", []byte("payload"))
	for i := 0; i < 6; i++ {
		in.Metadata.Set(strings.Repeat("k", i+1), strings.Repeat("v", 3*i+1))
	}
	b := packMessage(in)
	few := testing.AllocsPerRun(100, func() { _ = unpackMessage(b) })
	for i := 6; i < 40; i++ {
		in.Metadata.Set(strings.Repeat("k", i+1), strings.Repeat("v", 3*i+1))
	}
	b = packMessage(in)
	many := testing.AllocsPerRun(100, func() { _ = unpackMessage(b) })
	// The message, its channels and the map's storage; the map grows with
	// the keys (a few allocations), the strings must not (one each).
	if many-few > 8 {
		t.Errorf("unpacking 40 metadata pairs takes %.0f allocations, 6 pairs %.0f: the strings are allocated one by one", many, few)
	}
}
