package queue_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/reliamq/reliamq/"

// goList runs go list with format over patterns and returns one line per package.
func goList(t *testing.T, format string, patterns ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, append([]string{"list", "-f", format}, patterns...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// The middleware works with any queue store through this package: no
// middleware package links an adapter (and with it SQL drivers), directly or
// through another package.
func TestNo_middleware_package_depends_on_an_adapter(t *testing.T) {
	lines := goList(t, `{{.ImportPath}} {{join .Deps " "}}`, module+"middleware/...")
	if len(lines) < 4 {
		t.Fatalf("go list found %d middleware packages; want the middleware tree", len(lines))
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		for _, dep := range fields[1:] {
			if strings.HasPrefix(dep, module+"adapters/") {
				t.Errorf("%s depends on %s", fields[0], dep)
			}
		}
	}
}

func TestNo_shared_package_depends_on_middleware_or_an_adapter(t *testing.T) {
	lines := goList(t, `{{.ImportPath}} {{join .Deps " "}}`, module+"pkg/...")
	if len(lines) < 5 {
		t.Fatalf("go list found %d pkg packages; want the pkg tree", len(lines))
	}
	for _, line := range lines {
		fields := strings.Fields(line)
		for _, dep := range fields[1:] {
			if strings.HasPrefix(dep, module+"adapters/") || strings.HasPrefix(dep, module+"middleware/") {
				t.Errorf("%s depends on %s", fields[0], dep)
			}
		}
	}
}

// The queue package is a leaf: the standard library and Watermill's message
// package, nothing of this module.
func TestQueue_package_imports_only_the_standard_library_and_watermill_message(t *testing.T) {
	lines := goList(t, `{{join .Imports "\n"}}`, module+"pkg/queue")
	for _, imp := range lines {
		if imp == "github.com/ThreeDotsLabs/watermill/message" {
			continue
		}
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("pkg/queue imports %s", imp)
		}
	}
}
