package rocketmqtest_test

import (
	"bufio"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

// rawClient speaks the remoting protocol directly, so the broker's own code
// can run under the race detector without the (racy) real client.
type rawClient struct {
	t      testing.TB
	nc     net.Conn
	r      *bufio.Reader
	mu     sync.Mutex
	opaque int32
	// requests the broker sent us (NOTIFY_CONSUMER_IDS_CHANGED)
	pushed []*wire.Command
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawClient) write(cmd *wire.Command) int32 {
	c.t.Helper()
	c.mu.Lock()
	c.opaque++
	cmd.Opaque = c.opaque
	c.mu.Unlock()
	cmd.Language = "GO"
	cmd.Version = 317
	frame, err := cmd.Encode()
	if err != nil {
		c.t.Fatalf("encode: %v", err)
	}
	if _, err := c.nc.Write(frame); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	return cmd.Opaque
}

// read returns the next response, collecting broker-initiated requests.
func (c *rawClient) read(timeout time.Duration) (*wire.Command, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	for {
		frame, err := wire.ReadFrame(c.r, 64<<20)
		if err != nil {
			return nil, err
		}
		cmd, err := wire.DecodeFrame(frame)
		if err != nil {
			return nil, err
		}
		if !cmd.IsResponse() {
			c.pushed = append(c.pushed, cmd)
			continue
		}
		return cmd, nil
	}
}

// call sends a request and waits for its response.
func (c *rawClient) call(code int32, ext map[string]string, body []byte) *wire.Command {
	c.t.Helper()
	op := c.write(&wire.Command{Code: code, ExtFields: ext, Body: body})
	for {
		resp, err := c.read(5 * time.Second)
		if err != nil {
			c.t.Fatalf("read response to code %d: %v", code, err)
		}
		if resp.Opaque == op {
			return resp
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
