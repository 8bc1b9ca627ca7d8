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

// TestBinary_runs_as_a_process_with_the_documented_exit_codes builds the real
// command and runs it, so main's wiring (arguments, stdin, exit status) is
// covered, not only run.
func TestBinary_runs_as_a_process_with_the_documented_exit_codes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; runs in the non-short pass")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to build the command")
	}
	bin := filepath.Join(t.TempDir(), "reliamq")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
	if code, out, _ := exitOf("", "fallback", "ls", "--dsn", dsn, "--topic", "orders"); code != exitOK || !strings.Contains(out, "2 rows.") {
		t.Fatalf("ls: exit %d\n%s", code, out)
	}
	if code, _, _ := exitOf("", "fallback", "ls"); code != exitUsage {
		t.Fatalf("no DSN: exit %d, want %d", code, exitUsage)
	}
	if code, _, stderr := exitOf("", "fallback", "ls", "--dsn", dsn, "--table", "nope"); code != exitNotFound || !strings.Contains(stderr, "does not exist") {
		t.Fatalf("missing table: exit %d, %q", code, stderr)
	}
	if code, _, stderr := exitOf("", "fallback", "purge", "--dsn", dsn); code != exitNotConfirmed || !strings.Contains(stderr, "--yes") {
		t.Fatalf("purge without answer: exit %d, %q", code, stderr)
	}
	if code, out, _ := exitOf("y\n", "fallback", "purge", "--dsn", dsn, "--json"); code != exitOK || !strings.Contains(out, `"deleted":3`) {
		t.Fatalf("confirmed purge: exit %d, %q", code, out)
	}
	// RELIAMQ_DSN stands in for --dsn.
	cmd := exec.Command(bin, "fallback", "ls", "--json")
	cmd.Env = append(os.Environ(), "RELIAMQ_DSN="+dsn)
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "[]" {
		t.Fatalf("ls with RELIAMQ_DSN: %v %q", err, out)
	}
}
