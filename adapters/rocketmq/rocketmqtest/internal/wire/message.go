package wire

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"sort"
	"strings"
)

// MagicCode is the commit-log magic of a stored message (CommitLog v1).
const MagicCode int32 = -626843481

// Message sysFlag bits.
const (
	SysFlagCompressed  int32 = 0x1
	SysFlagBornHostV6  int32 = 0x10
	SysFlagStoreHostV6 int32 = 0x20
)

// ErrMessage reports bytes that are not a valid stored message or batch.
var ErrMessage = errors.New("wire: malformed message")

// Message is a stored message in the commit-log layout.
type Message struct {
	QueueID                   int32
	Flag                      int32
	QueueOffset               int64
	CommitLogOffset           int64
	SysFlag                   int32
	BornTimestamp             int64
	BornHost                  netip.AddrPort
	StoreTimestamp            int64
	StoreHost                 netip.AddrPort
	ReconsumeTimes            int32
	PreparedTransactionOffset int64
	Body                      []byte
	Topic                     string
	Properties                string
}

func hostLen(a netip.AddrPort) int {
	if a.Addr().Is4() || a.Addr().Is4In6() || !a.Addr().IsValid() {
		return 8
	}
	return 20
}

func putHost(buf []byte, a netip.AddrPort) int {
	addr := a.Addr()
	if !addr.IsValid() {
		addr = netip.IPv4Unspecified()
	}
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		copy(buf, b[:])
		binary.BigEndian.PutUint32(buf[4:], uint32(a.Port()))
		return 8
	}
	b := addr.As16()
	copy(buf, b[:])
	binary.BigEndian.PutUint32(buf[16:], uint32(a.Port()))
	return 20
}

// BodyCRC is the CRC the broker stores for a body (CRC-32 IEEE, sign bit cleared).
func BodyCRC(body []byte) int32 { return int32(crc32.ChecksumIEEE(body) & 0x7FFFFFFF) }

// EncodedSize returns the number of bytes Encode produces for m.
func (m *Message) EncodedSize() int {
	return 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + hostLen(m.BornHost) + 8 + hostLen(m.StoreHost) +
		4 + 8 + 4 + len(m.Body) + 1 + len(m.Topic) + 2 + len(m.Properties)
}

// Encode returns the stored-message bytes. The sysFlag host bits are set from
// the host addresses. The topic must be at most 255 bytes and the properties
// at most 32767 bytes (the reader's int16); callers validate that first.
func (m *Message) Encode() []byte {
	size := m.EncodedSize()
	buf := make([]byte, size)
	sys := m.SysFlag &^ (SysFlagBornHostV6 | SysFlagStoreHostV6)
	if hostLen(m.BornHost) == 20 {
		sys |= SysFlagBornHostV6
	}
	if hostLen(m.StoreHost) == 20 {
		sys |= SysFlagStoreHostV6
	}
	be := binary.BigEndian
	p := 0
	be.PutUint32(buf[p:], uint32(size))
	p += 4
	magic := MagicCode
	be.PutUint32(buf[p:], uint32(magic))
	p += 4
	be.PutUint32(buf[p:], uint32(BodyCRC(m.Body)))
	p += 4
	be.PutUint32(buf[p:], uint32(m.QueueID))
	p += 4
	be.PutUint32(buf[p:], uint32(m.Flag))
	p += 4
	be.PutUint64(buf[p:], uint64(m.QueueOffset))
	p += 8
	be.PutUint64(buf[p:], uint64(m.CommitLogOffset))
	p += 8
	be.PutUint32(buf[p:], uint32(sys))
	p += 4
	be.PutUint64(buf[p:], uint64(m.BornTimestamp))
	p += 8
	p += putHost(buf[p:], m.BornHost)
	be.PutUint64(buf[p:], uint64(m.StoreTimestamp))
	p += 8
	p += putHost(buf[p:], m.StoreHost)
	be.PutUint32(buf[p:], uint32(m.ReconsumeTimes))
	p += 4
	be.PutUint64(buf[p:], uint64(m.PreparedTransactionOffset))
	p += 8
	be.PutUint32(buf[p:], uint32(len(m.Body)))
	p += 4
	p += copy(buf[p:], m.Body)
	buf[p] = byte(len(m.Topic))
	p++
	p += copy(buf[p:], m.Topic)
	be.PutUint16(buf[p:], uint16(len(m.Properties)))
	p += 2
	copy(buf[p:], m.Properties)
	return buf
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: truncated", ErrMessage)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.next(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.next(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) host(v6 bool) netip.AddrPort {
	n := 4
	if v6 {
		n = 16
	}
	b := r.next(n)
	port := r.u32()
	if r.err != nil {
		return netip.AddrPort{}
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr, uint16(port))
}

// DecodeMessages decodes concatenated stored messages, as in a pull body.
// Each message's totalSize must match its fields exactly.
func DecodeMessages(data []byte) ([]Message, error) {
	var out []Message
	for len(data) > 0 {
		if len(data) < 4 {
			return out, fmt.Errorf("%w: %d trailing bytes", ErrMessage, len(data))
		}
		size := int(int32(binary.BigEndian.Uint32(data)))
		if size < 4 || size > len(data) {
			return out, fmt.Errorf("%w: total size %d of %d bytes", ErrMessage, size, len(data))
		}
		m, err := decodeOne(data[:size])
		if err != nil {
			return out, err
		}
		out = append(out, m)
		data = data[size:]
	}
	return out, nil
}

func decodeOne(data []byte) (Message, error) {
	r := &reader{b: data[4:]}
	var m Message
	r.u32() // magic; the Go client does not check it either
	r.u32() // body CRC, recomputed on encode
	m.QueueID = int32(r.u32())
	m.Flag = int32(r.u32())
	m.QueueOffset = int64(r.u64())
	m.CommitLogOffset = int64(r.u64())
	m.SysFlag = int32(r.u32())
	m.BornTimestamp = int64(r.u64())
	m.BornHost = r.host(m.SysFlag&SysFlagBornHostV6 != 0)
	m.StoreTimestamp = int64(r.u64())
	m.StoreHost = r.host(m.SysFlag&SysFlagStoreHostV6 != 0)
	m.ReconsumeTimes = int32(r.u32())
	m.PreparedTransactionOffset = int64(r.u64())
	bodyLen := int(int32(r.u32()))
	m.Body = r.next(bodyLen)
	if tl := r.next(1); tl != nil {
		m.Topic = string(r.next(int(tl[0])))
	}
	propLen := int(int16(r.u16()))
	m.Properties = string(r.next(propLen))
	if r.err != nil {
		return Message{}, r.err
	}
	if len(r.b) != 0 {
		return Message{}, fmt.Errorf("%w: %d bytes beyond the last field", ErrMessage, len(r.b))
	}
	return m, nil
}

// BatchEntry is one message of a SEND_BATCH_MESSAGE body.
type BatchEntry struct {
	Flag       int32
	Body       []byte
	Properties string
}

// DecodeBatch decodes a SEND_BATCH_MESSAGE body: repeated
// totalSize, magic, bodyCRC, flag, bodyLen, body, propLen(int16), props.
func DecodeBatch(data []byte) ([]BatchEntry, error) {
	var out []BatchEntry
	for len(data) > 0 {
		if len(data) < 4 {
			return nil, fmt.Errorf("%w: %d trailing bytes in batch", ErrMessage, len(data))
		}
		size := int(int32(binary.BigEndian.Uint32(data)))
		if size < 22 || size > len(data) {
			return nil, fmt.Errorf("%w: batch entry size %d of %d bytes", ErrMessage, size, len(data))
		}
		r := &reader{b: data[4:size]}
		r.u32() // magic
		r.u32() // body CRC
		var e BatchEntry
		e.Flag = int32(r.u32())
		e.Body = r.next(int(int32(r.u32())))
		e.Properties = string(r.next(int(int16(r.u16()))))
		if r.err != nil {
			return nil, r.err
		}
		if len(r.b) != 0 {
			return nil, fmt.Errorf("%w: batch entry has %d extra bytes", ErrMessage, len(r.b))
		}
		out = append(out, e)
		data = data[size:]
	}
	return out, nil
}

// EncodeBatch is the inverse of DecodeBatch, for tests and tools.
func EncodeBatch(entries []BatchEntry) []byte {
	var out []byte
	for _, e := range entries {
		size := 20 + len(e.Body) + 2 + len(e.Properties)
		b := make([]byte, size)
		binary.BigEndian.PutUint32(b[0:], uint32(size))
		binary.BigEndian.PutUint32(b[12:], uint32(e.Flag))
		binary.BigEndian.PutUint32(b[16:], uint32(len(e.Body)))
		copy(b[20:], e.Body)
		binary.BigEndian.PutUint16(b[20+len(e.Body):], uint16(len(e.Properties)))
		copy(b[22+len(e.Body):], e.Properties)
		out = append(out, b...)
	}
	return out
}

// Property separators of the properties string.
const (
	NameValueSeparator = '\x01'
	PropertySeparator  = '\x02'
)

// ParseProperties parses "k\x01v\x02..." pairs. Items without exactly one
// separator are skipped, as the client does.
func ParseProperties(s string) map[string]string {
	m := make(map[string]string, strings.Count(s, string(PropertySeparator))+1)
	for s != "" {
		var item string
		item, s, _ = strings.Cut(s, string(PropertySeparator))
		k, v, ok := strings.Cut(item, string(NameValueSeparator))
		if !ok || strings.IndexByte(v, NameValueSeparator) >= 0 {
			continue
		}
		m[k] = v
	}
	return m
}

// HasEmptyProperty reports whether the properties string s holds a property
// with an empty name or value, which the Apache broker drops when it parses
// the properties of a single send (MessageDecoder.string2messageProperties).
func HasEmptyProperty(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == NameValueSeparator || s[len(s)-1] == NameValueSeparator {
		return true
	}
	// An empty value ends with "\x01\x02", an empty name starts with
	// "\x02\x01".
	return strings.Contains(s, "\x01\x02") || strings.Contains(s, "\x02\x01")
}

// FormatProperties writes properties in sorted key order.
func FormatProperties(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(NameValueSeparator)
		b.WriteString(m[k])
		b.WriteByte(PropertySeparator)
	}
	return b.String()
}

// OffsetMsgID builds the offset message id: upper-case hex of the store
// host's IPv4 address, its port as int32 and the commit-log offset as int64.
func OffsetMsgID(storeHost netip.AddrPort, commitLogOffset int64) string {
	var b [16]byte
	a := storeHost.Addr().Unmap()
	if a.Is4() {
		ip := a.As4()
		copy(b[:4], ip[:])
	}
	binary.BigEndian.PutUint32(b[4:], uint32(storeHost.Port()))
	binary.BigEndian.PutUint64(b[8:], uint64(commitLogOffset))
	return strings.ToUpper(hex.EncodeToString(b[:]))
}
