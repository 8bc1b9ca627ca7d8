//go:build !race

// The RocketMQ client has data races of its own: these tests run without -race.

package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
)

// TestREADME_complete_program_is_this_file keeps the README's complete
// program and this example the same bytes, so CI compiles and runs what the
// README shows.
func TestREADME_complete_program_is_this_file(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	const open, closing = "```go\n// Command quickstart", "\n```\n"
	start := bytes.Index(readme, []byte(open))
	if start < 0 {
		t.Fatal("README.md has no ```go block starting with // Command quickstart")
	}
	block := readme[start+len("```go\n"):]
	end := bytes.Index(block, []byte(closing))
	if end < 0 {
		t.Fatal("the README's quickstart block is not closed")
	}
	block = block[:end+1]
	if !bytes.Equal(block, src) {
		t.Fatalf("README.md's complete program differs from examples/quickstart/main.go; copy the file into the README.\nREADME block:\n%s", block)
	}
}

func TestRun_publishes_receives_each_message_once_and_shuts_down(t *testing.T) {
	defer goleak.VerifyNone(t, rocketmqtest.LeakOptions()...)
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	published := regexp.MustCompile(`(?m)^published (\S+)$`).FindAllStringSubmatch(out.String(), -1)
	if len(published) != 3 {
		t.Fatalf("published %d messages, want 3:\n%s", len(published), out.String())
	}
	for _, p := range published {
		if n := strings.Count(out.String(), "received "+p[1]+": "); n != 1 {
			t.Errorf("message %s received %d times, want once:\n%s", p[1], n, out.String())
		}
	}
	if !strings.HasSuffix(out.String(), "shut down\n") {
		t.Errorf("no clean shutdown:\n%s", out.String())
	}
}
