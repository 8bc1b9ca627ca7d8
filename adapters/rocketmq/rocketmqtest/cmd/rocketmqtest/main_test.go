package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRun_serves_on_the_given_address_until_cancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-delay-scale", "0.01"}, pw, io.Discard) }()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the address: %v", err)
	}
	addr := strings.TrimSpace(line)
	// A GET_ROUTEINFO_BY_TOPIC for TBW102 must be answered with SUCCESS.
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	header := `{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"extFields":{"topic":"TBW102"}}`
	frame := make([]byte, 8, 8+len(header))
	putU32(frame, uint32(4+len(header)))
	putU32(frame[4:], uint32(len(header)))
	frame = append(frame, header...)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp := make([]byte, 4096)
	n, err := conn.Read(resp)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !strings.Contains(string(resp[:n]), `"code":0`) || !strings.Contains(string(resp[:n]), "brokerAddrs") {
		t.Errorf("route answer %q", resp[:n])
	}
	_ = conn.Close()

	cancel()
	_ = pw.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still serving after run returned")
	}
}

func TestRun_rejects_bad_flags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-addr", "bad"}, {"extra"}, {"-delay-scale", "-1"}} {
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}
