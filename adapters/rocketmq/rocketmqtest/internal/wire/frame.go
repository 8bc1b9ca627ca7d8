// Package wire encodes and decodes the RocketMQ remoting protocol as spoken by
// rocketmq-client-go v2: length-prefixed frames with a JSON header, the
// stored-message binary layout returned by pulls, the batch body of
// SEND_BATCH_MESSAGE and the properties string.
//
// Every decoder here takes untrusted bytes and returns an error instead of
// panicking; the fuzz targets in this package hold it to that.
package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Flag bits of a remoting command.
const (
	// FlagResponse marks a command as a response to the request with the same opaque.
	FlagResponse int32 = 1
	// FlagOneway marks a request whose sender expects no response.
	FlagOneway int32 = 2
)

// ErrFrame reports a frame that cannot be decoded. A connection that sent one
// cannot be trusted to be in sync any more and is closed by the broker.
var ErrFrame = errors.New("wire: malformed frame")

// Command is one remoting command, request or response.
type Command struct {
	Code      int32             `json:"code"`
	Language  string            `json:"language"`
	Version   int32             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark,omitempty"`
	ExtFields map[string]string `json:"extFields,omitempty"`
	Body      []byte            `json:"-"`
	// BodyParts follow Body on the wire. Encoders write them without
	// copying them into one buffer: a pull response references the stored
	// messages directly.
	BodyParts [][]byte `json:"-"`
}

// BodyLen is the length of Body and BodyParts together.
func (c *Command) BodyLen() int {
	n := len(c.Body)
	for _, p := range c.BodyParts {
		n += len(p)
	}
	return n
}

// IsResponse reports whether the response flag is set.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether the oneway flag is set.
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// header is what actually travels; language is accepted in any JSON form,
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

// Encode returns the whole frame, length prefix included.
func (c *Command) Encode() ([]byte, error) {
	buf, err := c.EncodeHead(c.BodyLen())
	if err != nil {
		return nil, err
	}
	buf = append(buf, c.Body...)
	for _, p := range c.BodyParts {
		buf = append(buf, p...)
	}
	return buf, nil
}

// EncodeHead returns the length prefix and header of a frame whose body
// (Body and BodyParts, written next by the caller) has bodyLen bytes.
func (c *Command) EncodeHead(bodyLen int) ([]byte, error) {
	h, err := encodeHeader(c)
	if err != nil {
		return nil, err
	}
	hlen := len(h)
	if hlen > 0xFFFFFF {
		return nil, fmt.Errorf("%w: header of %d bytes", ErrFrame, hlen)
	}
	buf := make([]byte, 8, 8+hlen+len(c.Body)) // room for Encode's body
	binary.BigEndian.PutUint32(buf[0:], uint32(4+hlen+bodyLen))
	binary.BigEndian.PutUint32(buf[4:], uint32(hlen)) // serialization type 0 = JSON
	return append(buf, h...), nil
}

// DecodeFrame decodes one frame without its 4-byte length prefix (what
// ReadFrame returns). Only the JSON header codec is supported: it is the only
// one rocketmq-client-go ever sends.
func DecodeFrame(frame []byte) (*Command, error) {
	if len(frame) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrame, len(frame))
	}
	mark := binary.BigEndian.Uint32(frame)
	serType := byte(mark >> 24)
	hlen := int(mark & 0xFFFFFF)
	if serType != 0 {
		return nil, fmt.Errorf("%w: unsupported serialization type %d", ErrFrame, serType)
	}
	if hlen > len(frame)-4 {
		return nil, fmt.Errorf("%w: header length %d exceeds frame of %d", ErrFrame, hlen, len(frame))
	}
	cmd, err := decodeHeader(frame[4 : 4+hlen])
	if err != nil {
		return nil, err
	}
	if body := frame[4+hlen:]; len(body) > 0 {
		cmd.Body = body
	}
	return cmd, nil
}

func decodeHeader(data []byte) (*Command, error) {
	cmd := &Command{}
	if !decodeHeaderFast(data, cmd) {
		var err error
		if cmd, err = decodeHeaderJSON(data); err != nil {
			return nil, err
		}
	}
	if cmd.ExtFields == nil {
		cmd.ExtFields = map[string]string{}
	}
	return cmd, nil
}

// lenientHeader is header with extFields of any JSON type: the Apache
// broker's fastjson takes a number, a boolean, an object or an array where a
// string belongs and uses its JSON text (null is left out).
type lenientHeader struct {
	header
	ExtFields map[string]json.RawMessage `json:"extFields,omitempty"`
}

// decodeHeaderJSON is the general decoder, and the reference for the fast path.
func decodeHeaderJSON(data []byte) (*Command, error) {
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
	var lang string
	if json.Unmarshal(h.Language, &lang) == nil {
		cmd.Language = lang
	}
	return cmd, nil
}

// ReadFrame reads one length-prefixed frame. Frames longer than max are
// rejected with ErrFrame before anything is allocated for them.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return nil, err
	}
	n := int64(int32(binary.BigEndian.Uint32(lenBuf[:])))
	if n < 4 || n > int64(max) {
		return nil, fmt.Errorf("%w: frame length %d", ErrFrame, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}
