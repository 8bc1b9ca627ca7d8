package rocketmqtest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest/internal/wire"
)

// ErrClosed is returned by Stop and Restart after Close.
var ErrClosed = errors.New("rocketmqtest: broker closed")

// Broker is an in-memory RocketMQ name server and broker on one TCP address.
// All methods are safe for concurrent use.
type Broker struct {
	cfg    Config
	logger watermill.LoggerAdapter

	opMu    sync.Mutex // serialises Stop, Restart and Close as whole operations
	lifeMu  sync.Mutex // guards the fields below up to wg
	ln      net.Listener
	addr    string
	running bool
	closed  bool
	conns   map[*conn]struct{}
	stopCh  chan struct{}  // closed by Stop; replaced by Restart
	wg      sync.WaitGroup // every goroutine of the broker
	heldMu  sync.Mutex     // orders heldWG.Add before heldWG.Wait
	heldWG  sync.WaitGroup // held pulls and delayed answers

	storeHost netip.AddrPort

	mu        sync.RWMutex // guards topics and groups
	topics    map[string]*topic
	groups    map[string]*group
	producers map[string]map[string]*conn // producer group -> client id -> connection

	commitLog atomic.Int64
	index     sync.Map // commit-log offset -> *storedMsg

	offMu   sync.Mutex
	offsets map[offsetKey]int64

	lockMu sync.Mutex
	locks  map[lockKey]lockEntry

	txMu   sync.Mutex
	halves map[int64]*halfMsg // by commit-log offset

	sched *scheduler

	faults         faults
	stallOnRestart atomic.Bool // StallConsumersOnRestart

	opaque atomic.Int32
}

// New starts a broker. It listens before returning, so NameServerAddr is
// usable at once.
func New(cfg Config) (*Broker, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:     cfg,
		logger:  cfg.Logger.With(watermill.LogFields{"component": "rocketmqtest"}),
		conns:   map[*conn]struct{}{},
		topics:  map[string]*topic{},
		groups:  map[string]*group{},
		offsets: map[offsetKey]int64{},
		locks:   map[lockKey]lockEntry{},
		halves:  map[int64]*halfMsg{},

		producers: map[string]map[string]*conn{},
	}
	b.sched = newScheduler(b)
	b.faults.init()
	if !cfg.DisableAutoCreateTopics {
		b.topics[autoCreateTopic] = newTopic(autoCreateTopic, cfg.DefaultQueueNums, cfg.DefaultQueueNums, permRW)
	}
	n := len(cfg.DelayLevels)
	b.topics[scheduleTopic] = newTopic(scheduleTopic, n, n, permRW)
	b.topics[halfTopic] = newTopic(halfTopic, 1, 1, permRW)
	replyTopic := cfg.ClusterName + "_REPLY_TOPIC"
	b.topics[replyTopic] = newTopic(replyTopic, 1, 1, permRW)
	b.sched.after(b.expiryScan(), b.expireClients)
	if err := b.start(cfg.Addr); err != nil {
		return nil, err
	}
	return b, nil
}

// NewTest starts a broker for t and closes it in t.Cleanup. It fails the
// test if the broker cannot start.
func NewTest(t testing.TB, cfg Config) *Broker {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("rocketmqtest: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func (b *Broker) start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("rocketmqtest: listen on %s: %w", addr, err)
	}
	ap, err := netip.ParseAddrPort(ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("rocketmqtest: listen address %s: %w", ln.Addr(), err)
	}
	b.ln = ln
	b.addr = ln.Addr().String()
	if b.storeHost != ap { // unchanged on Restart, so handlers read it without a lock
		b.storeHost = ap
	}
	b.running = true
	b.stopCh = make(chan struct{})
	b.wg.Add(1)
	go b.acceptLoop(ln, b.stopCh)
	b.sched.start(b.stopCh)
	b.logger.Debug("broker listening", watermill.LogFields{"addr": b.addr})
	return nil
}

// NameServerAddr is the name-server address to give the client
// (producer.WithNameServer, consumer.WithNameServer, admin.WithResolver).
func (b *Broker) NameServerAddr() string {
	b.lifeMu.Lock()
	defer b.lifeMu.Unlock()
	return b.addr
}

// BrokerAddr is the broker address, for the admin client's
// WithBrokerAddrCreate. It equals NameServerAddr: routes point back at the
// same listener.
func (b *Broker) BrokerAddr() string { return b.NameServerAddr() }

// Stop closes the listener and every client connection, and pauses the delay
// schedule, keeping all topics, messages, offsets and pending delayed
// messages. Restart resumes on the same address. Stopping a stopped broker
// does nothing.
func (b *Broker) Stop() error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.lifeMu.Lock()
	if b.closed {
		b.lifeMu.Unlock()
		return ErrClosed
	}
	if !b.running {
		b.lifeMu.Unlock()
		return nil
	}
	b.stopLocked()
	b.lifeMu.Unlock()
	b.finishStop()
	return nil
}

// stopLocked stops accepting and wakes held pulls, which answer
// SERVICE_NOT_AVAILABLE: the client then retries after 3 s instead of
// waiting 30 s for a response that a closed connection never delivers.
func (b *Broker) stopLocked() {
	b.running = false
	close(b.stopCh)
	_ = b.ln.Close()
}

// finishStop waits for held requests to answer, closes every connection
// once its queued responses are written, and waits for all goroutines.
func (b *Broker) finishStop() {
	// Taking heldMu is a barrier: every goHandle that added to heldWG did
	// so before this point, and every later one sees the closed stop channel.
	b.heldMu.Lock()
	held := &b.heldWG
	b.heldMu.Unlock()
	held.Wait()
	b.lifeMu.Lock()
	for c := range b.conns {
		c.closeGracefully()
	}
	b.lifeMu.Unlock()
	b.wg.Wait()
}

// Restart starts listening again on the address of the first start, keeping
// the data. Restarting a running broker does nothing.
func (b *Broker) Restart() error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.lifeMu.Lock()
	defer b.lifeMu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.running {
		return nil
	}
	return b.start(b.addr)
}

// Close stops the broker for good and drops its data. It waits for every
// goroutine of the broker to end. Calling it again returns nil.
func (b *Broker) Close() error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	b.lifeMu.Lock()
	if b.closed {
		b.lifeMu.Unlock()
		return nil
	}
	b.closed = true
	wasRunning := b.running
	if wasRunning {
		b.stopLocked()
	}
	b.lifeMu.Unlock()
	if wasRunning {
		b.finishStop()
	}
	b.sched.clear()
	return nil
}

// DropConnections closes every client connection, as a network failure
// would; the broker keeps listening and clients reconnect.
func (b *Broker) DropConnections() {
	b.lifeMu.Lock()
	defer b.lifeMu.Unlock()
	for c := range b.conns {
		c.close()
	}
}

func (b *Broker) acceptLoop(ln net.Listener, stop chan struct{}) {
	defer b.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-stop:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		b.lifeMu.Lock()
		if !b.running || b.stopCh != stop {
			b.lifeMu.Unlock()
			_ = nc.Close()
			return
		}
		c := newConn(b, nc, stop)
		b.conns[c] = struct{}{}
		b.wg.Add(1)
		b.lifeMu.Unlock()
		go c.readLoop()
	}
}

// conn is one client connection. Requests are handled in order on the read
// goroutine, except held pulls and requests with injected latency, which get
// their own goroutine. Responses are written under wmu; the read goroutine
// flushes only when it has no further request buffered, so pipelined
// requests share one write system call.
type conn struct {
	b      *Broker
	nc     net.Conn
	remote netip.AddrPort
	stop   <-chan struct{} // the broker run this connection belongs to
	done   chan struct{}   // closed when the connection is closed
	once   sync.Once

	wmu  sync.Mutex
	w    *bufio.Writer
	werr bool

	mu        sync.Mutex
	clientIDs map[string]struct{}
	pending   map[int32]chan *wire.Command // requests the broker sent, by opaque
}

func newConn(b *Broker, nc net.Conn, stop <-chan struct{}) *conn {
	remote, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	return &conn{
		b: b, nc: nc, remote: remote, stop: stop,
		done:      make(chan struct{}),
		w:         bufio.NewWriterSize(nc, 64<<10),
		clientIDs: map[string]struct{}{},
	}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.nc.Close()
	})
}

// closeGracefully writes what is buffered, then closes. A client that does
// not read gets a second to take its responses.
func (c *conn) closeGracefully() {
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.flush()
	c.close()
}

const readBufferSize = 64 << 10

func (c *conn) readLoop() {
	defer c.b.wg.Done()
	defer c.b.connClosed(c)
	defer c.close()
	r := bufio.NewReaderSize(c.nc, readBufferSize)
	for {
		frame, err := wire.ReadFrame(r, c.b.cfg.MaxFrameSize)
		if err != nil {
			if errors.Is(err, wire.ErrFrame) {
				c.b.logger.Info("closing connection after a bad frame", watermill.LogFields{"remote": c.nc.RemoteAddr().String(), "err": err})
			}
			return
		}
		cmd, err := wire.DecodeFrame(frame)
		if err != nil {
			// As the Apache broker's decoder: a frame whose header cannot
			// be decoded closes the connection, unanswered.
			c.b.logger.Info("closing connection after an undecodable header", watermill.LogFields{"remote": c.nc.RemoteAddr().String(), "err": err})
			return
		} else if cmd.IsResponse() {
			c.deliver(cmd)
		} else {
			c.b.dispatch(c, cmd)
		}
		if r.Buffered() == 0 && !c.flush() {
			return
		}
	}
}

// write buffers a frame without flushing; the caller or the read loop
// flushes.
func (c *conn) write(cmd *wire.Command) {
	head, err := cmd.EncodeHead(cmd.BodyLen())
	if err != nil {
		c.b.logger.Error("encode response", err, nil)
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr {
		return
	}
	_, err = c.w.Write(head)
	if err == nil {
		_, err = c.w.Write(cmd.Body)
	}
	for _, p := range cmd.BodyParts {
		if err != nil {
			break
		}
		_, err = c.w.Write(p)
	}
	if err != nil {
		c.werr = true
		c.close()
	}
}

// flush writes what is buffered; it reports false once the connection
// cannot be written any more.
func (c *conn) flush() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr {
		return false
	}
	if c.w.Buffered() == 0 {
		return true
	}
	if err := c.w.Flush(); err != nil {
		c.werr = true
		c.close()
		return false
	}
	return true
}

// send writes and flushes, for frames sent off the read goroutine.
func (c *conn) send(cmd *wire.Command) {
	c.write(cmd)
	c.flush()
}

// deliver hands a client's response to the broker request waiting for it.
// Responses nobody waits for (to oneway notifications) are dropped.
func (c *conn) deliver(resp *wire.Command) {
	c.mu.Lock()
	ch := c.pending[resp.Opaque]
	delete(c.pending, resp.Opaque)
	c.mu.Unlock()
	if ch != nil {
		ch <- resp
	}
}

// invoke sends a request to the client and waits for its response.
func (c *conn) invoke(req *wire.Command, timeout time.Duration) (*wire.Command, error) {
	ch := make(chan *wire.Command, 1)
	c.mu.Lock()
	if c.pending == nil {
		c.pending = map[int32]chan *wire.Command{}
	}
	c.pending[req.Opaque] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.Opaque)
		c.mu.Unlock()
	}()
	c.send(req)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case resp := <-ch:
		return resp, nil
	case <-t.C:
		return nil, errors.New("client did not answer in time")
	case <-c.done:
		return nil, errors.New("client connection closed")
	case <-c.stop:
		return nil, errors.New("broker stopping")
	}
}

func (c *conn) addClient(id string) {
	c.mu.Lock()
	c.clientIDs[id] = struct{}{}
	c.mu.Unlock()
}

func (b *Broker) connClosed(c *conn) {
	b.lifeMu.Lock()
	delete(b.conns, c)
	b.lifeMu.Unlock()
	c.mu.Lock()
	ids := make([]string, 0, len(c.clientIDs))
	for id := range c.clientIDs {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	b.unregisterConn(c, ids)
}
