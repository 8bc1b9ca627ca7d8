package wire

import (
	"strings"
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
		`{"extFields":{"properties":"UNIQ_KEY\u0001AB\u0002TAGS\u0001t\u0002"}}`,
		`{"remark":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"}`,
		`{"remark":"\ud800x"}`,
		`{"remark":"\x"}`,
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

// Every kind of byte that ends a plain run, at every position, is decoded as
// encoding/json decodes it, or left to it.
func TestHeader_fast_path_strings_agree_with_encoding_json_at_every_position(t *testing.T) {
	for n := 1; n <= 25; n++ {
		for at := 0; at < n; at++ {
			for _, c := range []struct {
				special string
				fast    bool // the fast path must take it
			}{
				{`\"`, true}, {`\\`, true}, {`\u0001`, true}, {`\n`, true}, {"é", true}, {"\u2028", true},
				{"\x7f", true}, {"\x01", false}, {"\x1f", false}, {"\xff", false}, {"\xc3", false},
			} {
				s := strings.Repeat("a", at) + c.special + strings.Repeat("b", n-at-1)
				data := []byte(`{"remark":"` + s + `","extFields":{"properties":"` + s + `"}}`)
				fast := &Command{}
				ok := decodeHeaderFast(data, fast)
				if ok != c.fast {
					t.Fatalf("%q: fast path took it: %v, want %v", data, ok, c.fast)
				}
				if !ok {
					continue
				}
				slow, err := decodeHeaderJSON(data)
				if err != nil {
					t.Fatalf("%q: encoding/json: %v", data, err)
				}
				if fast.Remark != slow.Remark || fast.ExtFields["properties"] != slow.ExtFields["properties"] {
					t.Fatalf("%q: fast %q %q, encoding/json %q %q", data, fast.Remark, fast.ExtFields["properties"], slow.Remark, slow.ExtFields["properties"])
				}
			}
		}
	}
}

func TestHeader_encoding_is_valid_JSON_for_any_strings(t *testing.T) {
	in := &Command{Code: 1, Opaque: -3, Remark: "quote \" backslash \\ newline \n é \x00 <&>",
		ExtFields: map[string]string{"k\"": "v\x01", "plain": "value"}}
	enc, err := encodeHeader(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeHeaderJSON(enc)
	if err != nil {
		t.Fatal(err)
	}
	in.Language = "JAVA"
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHeader_fast_path_takes_what_the_client_sends(t *testing.T) {
	// A SEND_MESSAGE header as rocketmq-client-go v2.1.2 writes it: jsoniter
	// escapes the properties separators.
	sent := `{"code":10,"language":"GO","version":317,"opaque":12,"flag":0,"remark":"","extFields":{"batch":"false","bornTimestamp":"1700000000000","defaultTopic":"TBW102","defaultTopicQueueNums":"4","flag":"0","maxReconsumeTimes":"0","producerGroup":"pg","properties":"UNIQ_KEY\u0001C0A8000100002A9F0000000000000001\u0002TAGS\u0001a\u0002","queueId":"1","reconsumeTimes":"0","sysFlag":"0","topic":"t","unitMode":"false"}}`
	cmd := &Command{}
	if !decodeHeaderFast([]byte(sent), cmd) {
		t.Fatal("the fast path rejected a client send header")
	}
	if cmd.ExtFields["properties"] != "UNIQ_KEY\x01C0A8000100002A9F0000000000000001\x02TAGS\x01a\x02" || cmd.Opaque != 12 || cmd.Language != "GO" {
		t.Errorf("decoded %+v", cmd)
	}
}

// BenchmarkDecodeHeader compares the hand-written header decoder with
// encoding/json on a SEND_MESSAGE header as the client writes it.
func BenchmarkDecodeHeader(b *testing.B) {
	sent := []byte(`{"code":10,"language":"GO","version":317,"opaque":12,"flag":0,"remark":"","extFields":{"batch":"false","bornTimestamp":"1700000000000","defaultTopic":"TBW102","defaultTopicQueueNums":"4","flag":"0","maxReconsumeTimes":"0","producerGroup":"pg","properties":"UNIQ_KEY\u0001C0A8000100002A9F0000000000000001\u0002TAGS\u0001a\u0002","queueId":"1","reconsumeTimes":"0","sysFlag":"0","topic":"t","unitMode":"false"}}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := decodeHeader(sent); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := decodeHeaderJSON(sent); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestHeader_decodes_what_a_Java_client_sends(t *testing.T) {
	// Java's RemotingCommand serialises with fastjson, sorted keys and an
	// extra serializeTypeCurrentRPC field.
	sent := `{"code":105,"extFields":{"topic":"t"},"flag":0,"language":"JAVA","opaque":3,"serializeTypeCurrentRPC":"JSON","version":395}`
	cmd, err := decodeHeader([]byte(sent))
	if err != nil {
		t.Fatal(err)
	}
	want := &Command{Code: 105, Language: "JAVA", Version: 395, Opaque: 3, ExtFields: map[string]string{"topic": "t"}}
	if diff := cmp.Diff(want, cmd); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
