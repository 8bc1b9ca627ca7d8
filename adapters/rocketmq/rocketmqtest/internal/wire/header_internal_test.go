package wire

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The fast header decoder must agree with encoding/json whenever it accepts
// an input.
func FuzzHeaderFastPath(f *testing.F) {
	for _, seed := range []string{
		`{"code":10,"language":"GO","version":317,"opaque":5,"flag":0,"remark":"","extFields":{"topic":"t","queueId":"1"}}`,
		`{}`,
		` { "code" : -1 , "extFields" : null } `,
		`{"extFields":{"a":"b"},"extFields":{"c":"d"}}`,
		`{"extFields":{"a":"b"},"extFields":null}`,
		`{"remark":"caf\u00e9","language":"JAVA"}`,
		`{"remark":"café"}`,
		`{"code":2147483648}`,
		`{"code":01}`,
		`{"code":1.0}`,
		`{"Code":3}`,
		`{"language":9}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast := &Command{}
		if !decodeHeaderFast(data, fast) {
			return
		}
		slow, err := decodeHeaderJSON(data)
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json rejects it: %v", data, err)
		}
		if len(fast.ExtFields) == 0 && len(slow.ExtFields) == 0 {
			fast.ExtFields, slow.ExtFields = nil, nil
		}
		if diff := cmp.Diff(slow, fast); diff != "" {
			t.Fatalf("decoders disagree on %q (-json +fast):\n%s", data, diff)
		}
	})
}

func TestHeader_encoding_is_valid_JSON_for_any_strings(t *testing.T) {
	in := &Command{Code: 1, Opaque: -3, Remark: "quote \" backslash \\ newline \n é \x00 <&>",
		ExtFields: map[string]string{"k\"": "v\x01", "plain": "value"}}
	got, err := decodeHeaderJSON(appendHeader(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	in.Language = "JAVA"
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
