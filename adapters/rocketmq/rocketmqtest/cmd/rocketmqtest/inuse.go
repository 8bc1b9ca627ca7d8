package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// portInUse explains a failed listen on addr: who holds the port, where the
// system tells, and whether it speaks RocketMQ.
func portInUse(addr string, err error) error {
	_, port, _ := net.SplitHostPort(addr)
	msg := fmt.Sprintf("cannot serve on %s: the port is already in use", addr)
	if who := portHolder(port); who != "" {
		msg += " by " + who
	}
	if speaksRocketMQ(addr) {
		msg += "; it answers the RocketMQ protocol (a real RocketMQ name server, or another rocketmqtest)"
	}
	if port == "9876" {
		msg += "; 9876 is a real RocketMQ name server's port"
	}
	msg += fmt.Sprintf(". Choose another -addr (default %s, or 127.0.0.1:0 for a free port)", DefaultAddr)
	return &inUseError{msg: msg, err: err}
}

// inUseError says what holds the port; it wraps the listen error
// (syscall.EADDRINUSE) without repeating its text.
type inUseError struct {
	msg string
	err error
}

func (e *inUseError) Error() string { return e.msg }
func (e *inUseError) Unwrap() error { return e.err }

// portHolder names the process listening on TCP port (decimal) from Linux's
// /proc: "pid 123 (cmd line)", or "" when that cannot be told (another
// system, or the process belongs to another user).
func portHolder(port string) string {
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return ""
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listeningInodes(f, uint16(p), inodes)
	}
	if len(inodes) == 0 {
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		fds, _ := os.ReadDir(filepath.Join(proc, "fd"))
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(proc, "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
				pid := filepath.Base(proc)
				cmd, _ := os.ReadFile(filepath.Join(proc, "cmdline"))
				line := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
				if len(line) > 160 {
					// A JVM's class name comes last, after its options.
					line = line[:60] + " ... " + line[len(line)-90:]
				}
				if line == "" {
					return "pid " + pid
				}
				return fmt.Sprintf("pid %s (%s)", pid, line)
			}
		}
	}
	return ""
}

// listeningInodes adds the socket inodes of file's listening sockets on
// port.
func listeningInodes(file string, port uint16, out map[string]bool) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan() // header line
	want := fmt.Sprintf(":%04X", port)
	for s.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(s.Text())
		if len(fields) < 10 || fields[3] != "0A" || !strings.HasSuffix(fields[1], want) {
			continue
		}
		out[fields[9]] = true
	}
}

// speaksRocketMQ asks addr for the route of TBW102 and reports whether it
// answered with a remoting frame.
func speaksRocketMQ(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	header := `{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"extFields":{"topic":"TBW102"}}`
	frame := make([]byte, 8, 8+len(header))
	binary.BigEndian.PutUint32(frame, uint32(4+len(header)))
	binary.BigEndian.PutUint32(frame[4:], uint32(len(header)))
	frame = append(frame, header...)
	if _, err := conn.Write(frame); err != nil {
		return false
	}
	var head [8]byte
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return false
	}
	total := binary.BigEndian.Uint32(head[:4])
	hlen := binary.BigEndian.Uint32(head[4:]) & 0xFFFFFF
	if total < 4 || hlen > total-4 || hlen > 1<<20 {
		return false
	}
	h := make([]byte, hlen)
	if _, err := io.ReadFull(conn, h); err != nil {
		return false
	}
	return strings.Contains(string(h), `"opaque":1`) && strings.Contains(string(h), `"code"`)
}
