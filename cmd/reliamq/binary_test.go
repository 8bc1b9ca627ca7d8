package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reliamq/reliamq/adapters/sqlstore"
)

// buildBinary builds the command into a temporary directory of t and
// returns its path (the go build cache makes later builds a link). It skips
// under -short and when there is no go tool.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; runs in the non-short pass")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to build the command")
	}
	bin := filepath.Join(t.TempDir(), "reliamq")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary_runs_as_a_process_with_the_documented_exit_codes builds the real
// command and runs it, so main's wiring (arguments, stdin, exit status) is
// covered, not only run.
func TestBinary_runs_as_a_process_with_the_documented_exit_codes_formats_and_help(t *testing.T) {
	bin := buildBinary(t)
	dsn, db := sqliteDB(t)
	seedFallback(t, newStore(t, db, sqlstore.SQLite, sqlstore.DefaultTable))

	exitOf := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, out.String(), errOut.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), out.String(), errOut.String()
		default:
			t.Fatalf("running %v: %v", args, err)
			return -1, "", ""
		}
	}
	// Table on stdout, the row count on stderr.
	if code, out, stderr := exitOf("", "fallback", "ls", "--dsn", dsn, "--topic", "orders"); code != exitOK ||
		!strings.HasPrefix(out, "ID ") || strings.Contains(out, "rows.") || stderr != "2 rows.\n" {
		t.Fatalf("ls: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if code, out, _ := exitOf("", "fallback", "ls", "--dsn", dsn, "-o", "json"); code != exitOK || !strings.Contains(out, `"first_error":`) {
		t.Fatalf("ls -o json: exit %d\n%s", code, out)
	}
	// Help: every spelling, double-dash flags, exit 0.
	for _, args := range [][]string{{"--help"}, {"help"}, {"fallback", "--help"}, {"fallback", "help"}, {"fallback", "ls", "--help"}, {"help", "dlq", "replay"}} {
		code, out, _ := exitOf("", args...)
		if code != exitOK || !strings.Contains(out, "Usage:") {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
		if len(args) > 1 && args[len(args)-1] == "--help" && args[0] == "fallback" && len(args) == 3 &&
			(!strings.Contains(out, "  --dsn string") || !strings.Contains(out, "-o, --output")) {
			t.Fatalf("%v: flags not in double-dash form:\n%s", args, out)
		}
	}
	if code, out, _ := exitOf("", "version"); code != exitOK || !strings.HasPrefix(out, "reliamq ") || !strings.Contains(out, "go1.") {
		t.Fatalf("version: exit %d %q", code, out)
	}
	if code, out, _ := exitOf("", "--version"); code != exitOK || !strings.HasPrefix(out, "reliamq ") {
		t.Fatalf("--version: exit %d %q", code, out)
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if code, out, _ := exitOf("", "completion", shell); code != exitOK || !strings.Contains(out, "reliamq") || len(out) < 500 {
			t.Fatalf("completion %s: exit %d, %d bytes", shell, code, len(out))
		}
	}
	if code, out, _ := exitOf("", "__complete", "fallback", "ls", "-o", ""); code != exitOK || !strings.Contains(out, "json") || !strings.Contains(out, "table") {
		t.Fatalf("completion of -o: exit %d %q", code, out)
	}
	for _, args := range [][]string{{"nosuch"}, {"fallback", "nosuch"}, {"fallback", "ls", "--nosuch"}, {"fallback", "ls", "-o", "yaml", "--dsn", dsn}} {
		if code, _, stderr := exitOf("", args...); code != exitUsage || !strings.Contains(stderr, "--help") {
			t.Fatalf("%v: exit %d, want %d; stderr %q", args, code, exitUsage, stderr)
		}
	}
	if code, _, _ := exitOf("", "fallback", "ls"); code != exitUsage {
		t.Fatalf("no DSN: exit %d, want %d", code, exitUsage)
	}
	if code, _, stderr := exitOf("", "fallback", "ls", "--dsn", dsn, "--table", "nope"); code != exitNotFound || !strings.Contains(stderr, "does not exist") {
		t.Fatalf("missing table: exit %d, %q", code, stderr)
	}
	if code, _, stderr := exitOf("", "dlq", "ls", "--dsn", dsn, "--table", "reliamq_fallback", "--consumer-group", "nosuch"); code != exitNotFound || !strings.Contains(stderr, "consumer group") {
		t.Fatalf("unknown group: exit %d, %q", code, stderr)
	}
	// Dry runs change nothing.
	if code, out, stderr := exitOf("", "fallback", "purge", "--dsn", dsn, "--dry-run"); code != exitOK || !strings.Contains(out, "o1") ||
		!strings.Contains(stderr, "Dry run: would delete 3 rows") {
		t.Fatalf("purge --dry-run: exit %d\n%s\n%s", code, out, stderr)
	}
	if code, out, _ := exitOf("", "fallback", "replay", "--dsn", dsn, "--to-store", "--dry-run", "-o", "json"); code != exitOK ||
		strings.Count(out, `"result":"would_replay"`) != 3 {
		t.Fatalf("replay --dry-run: exit %d\n%s", code, out)
	}
	if code, _, stderr := exitOf("", "fallback", "purge", "--dsn", dsn); code != exitNotConfirmed || !strings.Contains(stderr, "--yes") {
		t.Fatalf("purge without answer: exit %d, %q", code, stderr)
	}
	if code, out, _ := exitOf("y\n", "fallback", "purge", "--dsn", dsn, "-o", "json"); code != exitOK || !strings.Contains(out, `"deleted":3`) {
		t.Fatalf("confirmed purge: exit %d, %q", code, out)
	}
	// RELIAMQ_DSN stands in for --dsn.
	cmd := exec.Command(bin, "fallback", "ls", "-o", "json")
	cmd.Env = append(os.Environ(), "RELIAMQ_DSN="+dsn)
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "[]" {
		t.Fatalf("ls with RELIAMQ_DSN: %v %q", err, out)
	}
}
