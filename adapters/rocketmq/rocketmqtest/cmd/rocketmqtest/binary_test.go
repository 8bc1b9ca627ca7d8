package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rocketmqtest-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "rocketmqtest")
	if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runBinary runs the command to its end and returns stdout, stderr and the
// exit code.
func runBinary(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("%v did not exit", args)
		return "", "", 0
	}
}

// Regression: a taken port gave "rocketmqtest: rocketmqtest: listen on ...:
// bind: address already in use", and the default port was a real RocketMQ
// name server's, where a replay meant for the embedded broker once went to a
// real broker.
func TestBinary_refuses_a_taken_port_and_names_its_holder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	stdout, stderr, code := runBinary(t, "-addr", ln.Addr().String())
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing (the first line is the address served)", stdout)
	}
	line := strings.TrimSpace(stderr)
	if strings.Count(line, "rocketmqtest:") != 1 || !strings.HasPrefix(line, "rocketmqtest: ") {
		t.Errorf("stderr %q: want one line with the prefix once", line)
	}
	for _, want := range []string{ln.Addr().String(), "already in use", "-addr"} {
		if !strings.Contains(line, want) {
			t.Errorf("stderr %q does not mention %q", line, want)
		}
	}
	if _, err := os.Stat("/proc/net/tcp"); err == nil {
		if want := fmt.Sprintf("pid %d ", os.Getpid()); !strings.Contains(line, want) {
			t.Errorf("stderr %q does not name the holder (%q)", line, want)
		}
	}
	if strings.Contains(line, "RocketMQ protocol") {
		t.Errorf("stderr %q: a listener that never answers does not speak RocketMQ", line)
	}
}

func TestBinary_says_when_the_port_is_held_by_a_RocketMQ_server(t *testing.T) {
	first := exec.Command(binPath, "-addr", "127.0.0.1:0")
	out, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Process.Kill(); _ = first.Wait() }()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the first server's address: %v", err)
	}
	addr = strings.TrimSpace(addr)

	_, stderr, code := runBinary(t, "-addr", addr)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr, "answers the RocketMQ protocol") {
		t.Errorf("stderr %q does not say the holder speaks RocketMQ", stderr)
	}
	if strings.Count(stderr, "rocketmqtest:") != 1 {
		t.Errorf("stderr %q: want the prefix once", stderr)
	}
}

func TestBinary_default_address_is_not_a_real_RocketMQ_port(t *testing.T) {
	_, stderr, code := runBinary(t, "-h")
	if code != 2 {
		t.Errorf("exit code %d for -h, want 2", code)
	}
	if !strings.Contains(stderr, DefaultAddr) {
		t.Errorf("help %q does not show the default %s", stderr, DefaultAddr)
	}
	for _, real := range []string{":9876", ":10911", ":10909", ":10912"} {
		if strings.HasSuffix(DefaultAddr, real) {
			t.Errorf("DefaultAddr %s is a real RocketMQ port", DefaultAddr)
		}
	}
}

func TestBinary_bad_flags_print_the_prefix_once(t *testing.T) {
	_, stderr, code := runBinary(t, "-addr", "bad")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if strings.Count(stderr, "rocketmqtest:") != 1 {
		t.Errorf("stderr %q: want the prefix once", stderr)
	}
}
