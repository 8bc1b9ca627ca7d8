package wire

import (
	"encoding/json"
	"fmt"
)

// The JSON header travels on every request and response; encoding/json reads
// and writes it.

// header is what a client sends; language is accepted in any JSON form,
// because Java clients send a string and some tools a number.
type header struct {
	Code      int32             `json:"code"`
	Language  json.RawMessage   `json:"language,omitempty"`
	Version   int32             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark,omitempty"`
	ExtFields map[string]string `json:"extFields,omitempty"`
}

// lenientHeader is header with extFields of any JSON type: the Apache
// broker's fastjson takes a number, a boolean, an object or an array where a
// string belongs and uses its JSON text (null is left out).
type lenientHeader struct {
	header
	ExtFields map[string]json.RawMessage `json:"extFields,omitempty"`
}

// decodeHeader decodes a JSON header. ExtFields is never nil.
func decodeHeader(data []byte) (*Command, error) {
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		var lh lenientHeader
		if json.Unmarshal(data, &lh) != nil {
			return nil, fmt.Errorf("%w: header: %v", ErrFrame, err)
		}
		h = lh.header
		h.ExtFields = make(map[string]string, len(lh.ExtFields))
		for k, raw := range lh.ExtFields {
			var str string
			switch {
			case string(raw) == "null":
			case json.Unmarshal(raw, &str) == nil:
				h.ExtFields[k] = str
			default:
				h.ExtFields[k] = string(raw)
			}
		}
	}
	cmd := &Command{
		Code: h.Code, Version: h.Version, Opaque: h.Opaque, Flag: h.Flag,
		Remark: h.Remark, ExtFields: h.ExtFields,
	}
	if cmd.ExtFields == nil {
		cmd.ExtFields = map[string]string{}
	}
	var lang string
	if json.Unmarshal(h.Language, &lang) == nil {
		cmd.Language = lang
	}
	return cmd, nil
}

// encodeHeader returns the JSON header of c; the language defaults to JAVA,
// as the Apache broker's.
func encodeHeader(c *Command) ([]byte, error) {
	h := *c
	if h.Language == "" {
		h.Language = "JAVA"
	}
	b, err := json.Marshal(&h)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFrame, err)
	}
	return b, nil
}
