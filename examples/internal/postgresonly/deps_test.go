package main

import (
	"os/exec"
	"strings"
	"testing"
)

// goList runs go list in the module and returns its output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func TestPostgreSQL_only_program_links_no_SQLite_and_no_test_packages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	forbidden := map[string]string{
		"modernc.org/sqlite": "the SQLite driver (import adapters/sqlstore/sqlite to get it)",
		"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest": "the embedded test broker",
		"testing":            "the testing package",
		"go.uber.org/goleak": "goleak",
	}
	deps := goList(t, "-deps", ".")
	if len(deps) < 50 {
		t.Fatalf("go list -deps gave %d packages, expected the whole stack", len(deps))
	}
	for _, d := range deps {
		if what, bad := forbidden[d]; bad {
			t.Errorf("the PostgreSQL-only program links %s (%s)", d, what)
		}
	}
}

func TestOnly_examples_its_command_and_test_support_import_rocketmqtest_and_only_sqlstore_sqlite_imports_the_driver(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	const module = "github.com/reliamq/reliamq/"
	for _, line := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			switch {
			case imp == module+"adapters/rocketmq/rocketmqtest":
				if !strings.HasPrefix(pkg, module+"examples/") && pkg != module+"adapters/rocketmq/rocketmqtest/cmd/rocketmqtest" &&
					pkg != module+"internal/transporttest" {
					t.Errorf("%s imports rocketmqtest outside its tests", pkg)
				}
			case imp == module+"internal/transporttest":
				// The tests' table of transports links the embedded broker
				// and every Watermill backend: tests only.
				t.Errorf("%s imports internal/transporttest outside its tests", pkg)
			case imp == "modernc.org/sqlite":
				if pkg != module+"adapters/sqlstore/sqlite" {
					t.Errorf("%s imports the SQLite driver; only adapters/sqlstore/sqlite may", pkg)
				}
			}
		}
	}
}

func TestGo_mod_is_tidy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go mod tidy -diff over the module")
	}
	out, err := exec.Command("go", "mod", "tidy", "-diff").CombinedOutput()
	if err != nil {
		t.Fatalf("go mod tidy -diff: %v (run go mod tidy):\n%s", err, out)
	}
}
