package servicetest

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadEnvFile_reads_the_kit_lines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rocketmq.env")
	body := "ROCKETMQ_NAMESRV=127.0.0.1:9876\nROCKETMQ_BROKERS=127.0.0.1:10911,127.0.0.1:10921\nnoise\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	env, err := readEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := splitList(env["ROCKETMQ_BROKERS"]); !reflect.DeepEqual(got, []string{"127.0.0.1:10911", "127.0.0.1:10921"}) {
		t.Fatalf("brokers = %v", got)
	}
	if env["ROCKETMQ_NAMESRV"] != "127.0.0.1:9876" || len(env) != 2 {
		t.Fatalf("env = %v", env)
	}
}

func TestRocketMQServer_skips_when_its_variables_are_unset(t *testing.T) {
	if InCI() {
		t.Skip("under CI an unset cluster fails the test instead")
	}
	s := RocketMQServer{Name: "nowhere", EnvPrefix: "RELIAMQ_TEST_UNSET_CLUSTER"}
	ok := t.Run("inner", func(t *testing.T) { s.Cluster(t); t.Error("Cluster returned for an unset cluster") })
	if !ok {
		t.Fatal("inner test failed instead of skipping")
	}
}

// recordingTB records Fatalf instead of stopping the test.
type recordingTB struct {
	testing.TB
	fatal string
	logs  int
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Logf(string, ...any)               { r.logs++ }
func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

// fakeKit writes a kit script that fails its first `fails` runs and records
// every command line in calls.
func fakeKit(t *testing.T, fails int) (script, calls string) {
	dir := t.TempDir()
	script, calls = filepath.Join(dir, "rocketmq-server"), filepath.Join(dir, "calls")
	body := fmt.Sprintf("#!/bin/sh\necho \"$*\" >> %s\n[ $(wc -l < %s) -gt %d ] || { echo boom; exit 1; }\n", calls, calls, fails)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, calls
}

func TestStartBroker_tries_a_failed_start_once_more(t *testing.T) {
	script, calls := fakeKit(t, 1)
	c := &RocketMQCluster{Dir: "/some/dir", script: script}
	tb := &recordingTB{TB: t}
	c.StartBroker(tb, 1)
	got, _ := os.ReadFile(calls)
	if tb.fatal != "" || tb.logs != 1 || string(got) != "start-broker 1 --dir /some/dir\nstart-broker 1 --dir /some/dir\n" {
		t.Fatalf("fatal %q, %d logs, calls:\n%s", tb.fatal, tb.logs, got)
	}
}

func TestEnsureRunning_fails_the_test_when_the_second_start_fails_too(t *testing.T) {
	script, calls := fakeKit(t, 2)
	c := &RocketMQCluster{Dir: "/some/dir", script: script}
	tb := &recordingTB{TB: t}
	c.EnsureRunning(tb)
	got, _ := os.ReadFile(calls)
	if !strings.Contains(tb.fatal, "boom") || string(got) != "start --dir /some/dir\nstart --dir /some/dir\n" {
		t.Fatalf("fatal %q, calls:\n%s", tb.fatal, got)
	}
}
