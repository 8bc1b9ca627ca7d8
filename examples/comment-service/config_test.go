package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reliamq/reliamq/pkg/policy"
)

func noEnv(string) (string, bool) { return "", false }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfig_defaults_to_the_seed_policy_and_the_story(t *testing.T) {
	cfg, err := ParseConfig(nil, noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Serve || len(cfg.NameServers) != 0 || cfg.DSN != "" {
		t.Errorf("config %+v, want the embedded story", cfg)
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, cfg.SendPolicy.Schedule(2)); diff != "" || cfg.SendPolicy.MaxAttempts != 3 {
		t.Errorf("send policy %d attempts, schedule (-want +got):\n%s", cfg.SendPolicy.MaxAttempts, diff)
	}
}

func TestParseConfig_reads_the_seed_yaml_keys_from_a_policy_file(t *testing.T) {
	path := filepath.Join(t.TempDir(), "retry.yaml")
	yaml := "server:\n  port: 8080\nretry:\n  max-attempts: 4\n  init-interval: 500\n  multiplier: 1.5\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]string{"--policy", path}, noEnv, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{500 * time.Millisecond, 750 * time.Millisecond, 1125 * time.Millisecond}
	if diff := cmp.Diff(want, cfg.SendPolicy.Schedule(3)); diff != "" || cfg.SendPolicy.MaxAttempts != 4 {
		t.Errorf("send policy %d attempts, schedule (-want +got):\n%s", cfg.SendPolicy.MaxAttempts, diff)
	}
}

func TestParseConfig_environment_sets_servers_dsn_and_policy_keys(t *testing.T) {
	cfg, err := ParseConfig(nil, envOf(map[string]string{
		"RELIAMQ_ROCKETMQ":           "10.0.0.1:9876, 10.0.0.2:9876",
		"RELIAMQ_DSN":                "postgres://u@db/x",
		"RELIAMQ_RETRY_MAX_ATTEMPTS": "5",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"10.0.0.1:9876", "10.0.0.2:9876"}, cfg.NameServers); diff != "" {
		t.Errorf("name servers (-want +got):\n%s", diff)
	}
	if !cfg.Serve || cfg.Listen != "127.0.0.1:8080" {
		t.Errorf("a real broker must imply --serve on 127.0.0.1:8080, got serve=%v listen=%q", cfg.Serve, cfg.Listen)
	}
	if cfg.DSN != "postgres://u@db/x" || cfg.SendPolicy.MaxAttempts != 5 {
		t.Errorf("dsn %q, max attempts %d", cfg.DSN, cfg.SendPolicy.MaxAttempts)
	}
}

func TestParseConfig_rejects_bad_values_naming_them(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("retry:\n  max-attempts: 0\n  multiplier: 0.5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want []string
		is   error
	}{
		{name: "policy file with bad keys", args: []string{"--policy", path}, want: []string{"max-attempts", "multiplier"}, is: policy.ErrInvalidConfig},
		{name: "missing policy file", args: []string{"--policy", filepath.Join(t.TempDir(), "none.yaml")}, want: []string{"--policy"}, is: os.ErrNotExist},
		{name: "bad environment override", env: map[string]string{"RELIAMQ_RETRY_MULTIPLIER": "zero"}, want: []string{"RELIAMQ_RETRY_MULTIPLIER"}, is: policy.ErrInvalidConfig},
		{name: "zero delay scale", args: []string{"--delay-scale", "0"}, want: []string{"--delay-scale"}},
		{name: "stray argument", args: []string{"extra"}, want: []string{"extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig(tc.args, envOf(tc.env), &bytes.Buffer{})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not match %v", err, tc.is)
			}
		})
	}
}

func TestHelp_documents_every_flag_and_exits_zero(t *testing.T) {
	var out bytes.Buffer
	if _, err := ParseConfig([]string{"--help"}, noEnv, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, s := range []string{"--rocketmq", "RELIAMQ_ROCKETMQ", "--dsn", "postgres://", "mysql://", "sqlite:", "--policy",
		"max-attempts", "init-interval", "multiplier", "--serve", "--listen", "--delay-scale", "POST /comments"} {
		if !strings.Contains(out.String(), strings.TrimPrefix(s, "-")) {
			t.Errorf("--help does not mention %q", s)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, &stdout, &stderr); code != 0 || stdout.Len() == 0 {
		t.Errorf("run -h: status %d, %d bytes of usage", code, stdout.Len())
	}
	if code := run([]string{"--no-such-flag"}, &stdout, &stderr); code != 2 {
		t.Errorf("run with an unknown flag: status %d, want 2", code)
	}
}
