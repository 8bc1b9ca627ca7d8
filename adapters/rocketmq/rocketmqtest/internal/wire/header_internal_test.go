package wire

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHeader_encoding_is_valid_JSON_for_any_strings(t *testing.T) {
	in := &Command{Code: 1, Opaque: -3, Remark: "quote \" backslash \\ newline \n é \x00 <&>",
		ExtFields: map[string]string{"k\"": "v\x01", "plain": "value"}}
	enc, err := encodeHeader(in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeHeader(enc)
	if err != nil {
		t.Fatal(err)
	}
	in.Language = "JAVA"
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestHeader_decodes_what_the_client_sends(t *testing.T) {
	// A SEND_MESSAGE header as rocketmq-client-go v2.1.2 writes it: jsoniter
	// escapes the properties separators.
	sent := `{"code":10,"language":"GO","version":317,"opaque":12,"flag":0,"remark":"","extFields":{"batch":"false","bornTimestamp":"1700000000000","defaultTopic":"TBW102","defaultTopicQueueNums":"4","flag":"0","maxReconsumeTimes":"0","producerGroup":"pg","properties":"UNIQ_KEY\u0001C0A8000100002A9F0000000000000001\u0002TAGS\u0001a\u0002","queueId":"1","reconsumeTimes":"0","sysFlag":"0","topic":"t","unitMode":"false"}}`
	cmd, err := decodeHeader([]byte(sent))
	if err != nil {
		t.Fatal(err)
	}
	if cmd.ExtFields["properties"] != "UNIQ_KEY\x01C0A8000100002A9F0000000000000001\x02TAGS\x01a\x02" || cmd.Opaque != 12 || cmd.Language != "GO" {
		t.Errorf("decoded %+v", cmd)
	}
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
