package rocketmqlevels_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/reliamq/reliamq/internal/rocketmqlevels"
)

// durationOf evaluates the forms a duration literal takes in this module:
// time.Second, 5 * time.Second, 5*time.Minute. ok is false for anything else.
func durationOf(e ast.Expr) (time.Duration, bool) {
	units := map[string]time.Duration{"Millisecond": time.Millisecond, "Second": time.Second, "Minute": time.Minute, "Hour": time.Hour}
	unit := func(e ast.Expr) (time.Duration, bool) {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return 0, false
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "time" {
			return 0, false
		}
		u, ok := units[sel.Sel.Name]
		return u, ok
	}
	if u, ok := unit(e); ok {
		return u, true
	}
	b, ok := e.(*ast.BinaryExpr)
	if !ok || b.Op != token.MUL {
		return 0, false
	}
	lit, ok := b.X.(*ast.BasicLit)
	if !ok || lit.Kind != token.INT {
		return 0, false
	}
	n, err := strconv.Atoi(lit.Value)
	if err != nil {
		return 0, false
	}
	u, ok := unit(b.Y)
	return time.Duration(n) * u, ok
}

// Regression: the 18 levels were written out three times (the redelivery
// middleware, the embedded broker and pkg/policy's schedule). This test
// parses every non-test Go file of the module and fails when a composite
// literal other than this package's holds a run of 8 or more consecutive
// levels, or a string spells them out.
func TestThe_delay_levels_are_written_out_once_in_the_module(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	levels := rocketmqlevels.Default()
	const minRun = 8
	longestRun := func(ds []time.Duration) int {
		best := 0
		for i := range ds {
			for j := range levels {
				n := 0
				for i+n < len(ds) && j+n < len(levels) && ds[i+n] == levels[j+n] {
					n++
				}
				best = max(best, n)
			}
		}
		return best
	}
	self, files := 0, 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				var ds []time.Duration
				for _, e := range n.Elts {
					if d, ok := durationOf(e); ok {
						ds = append(ds, d)
					} else {
						ds = append(ds, -1)
					}
				}
				if run := longestRun(ds); run >= minRun {
					if filepath.Dir(rel) == filepath.Join("internal", "rocketmqlevels") {
						self++
					} else {
						t.Errorf("%s: a literal repeats %d consecutive RocketMQ delay levels; use rocketmqlevels (or rocketmq.DelayLevels)", rel, run)
					}
				}
			case *ast.BasicLit:
				if n.Kind == token.STRING && strings.Contains(n.Value, "10m 20m 30m 1h 2h") {
					t.Errorf("%s: a string spells out the RocketMQ delay levels", rel)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if self != 1 || files < 50 {
		t.Fatalf("found the table %d times in this package among %d files: the scan does not see the code", self, files)
	}
}

func TestConsumerRetries_are_the_levels_from_the_first_retry_level_on(t *testing.T) {
	all, retries := rocketmqlevels.Default(), rocketmqlevels.ConsumerRetries()
	if len(all) != 18 || len(retries) != 16 {
		t.Fatalf("%d levels, %d retries; want 18 and 16", len(all), len(retries))
	}
	for i, d := range retries {
		if all[rocketmqlevels.FirstRetryLevel-1+i] != d {
			t.Fatalf("retry %d waits %v, level %d is %v", i+1, d, rocketmqlevels.FirstRetryLevel+i, all[rocketmqlevels.FirstRetryLevel-1+i])
		}
	}
	all[0], retries[0] = 0, 0
	if rocketmqlevels.Default()[0] != time.Second || rocketmqlevels.ConsumerRetries()[0] != 10*time.Second {
		t.Fatal("a caller changed the table through a returned slice")
	}
}
