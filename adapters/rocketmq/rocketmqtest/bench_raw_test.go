package rocketmqtest_test

import (
	"strconv"
	"testing"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

// BenchmarkBrokerRaw measures the broker alone, driven over TCP by a
// minimal protocol client without the real client's overhead: one 1 KiB
// send per op, and one message per op pulled in batches of 32.
func BenchmarkBrokerRaw(b *testing.B) {
	body := make([]byte, 1024)
	b.Run("send", func(b *testing.B) {
		br := rocketmqtest.NewTest(b, rocketmqtest.Config{})
		c := dialRaw(b, br.NameServerAddr())
		ext := sendExt("raw-bench", 0, map[string]string{"UNIQ_KEY": "X", "TAGS": "t"})
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if r := c.call(codeSend, ext, body); r.Code != 0 {
				b.Fatalf("send: %d", r.Code)
			}
		}
	})
	b.Run("pull", func(b *testing.B) {
		br := rocketmqtest.NewTest(b, rocketmqtest.Config{})
		c := dialRaw(b, br.NameServerAddr())
		ext := sendExt("raw-bench", 0, map[string]string{"UNIQ_KEY": "X", "TAGS": "t"})
		for i := 0; i < b.N; i++ {
			if r := c.call(codeSend, ext, body); r.Code != 0 {
				b.Fatalf("send: %d", r.Code)
			}
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		b.ResetTimer()
		var off int64
		for off < int64(b.N) {
			r := c.call(codePull, pullExt("g", "raw-bench", 0, off), nil)
			if r.Code != 0 {
				b.Fatalf("pull at %d: %d", off, r.Code)
			}
			next, _ := strconv.ParseInt(r.ExtFields["nextBeginOffset"], 10, 64)
			off = next
		}
	})
}
