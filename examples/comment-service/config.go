package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reliamq/reliamq/pkg/policy"
)

// Config is everything the command line and the environment can set.
type Config struct {
	// NameServers are RocketMQ name servers. Empty: start the embedded broker.
	NameServers []string
	// DSN selects the fallback database. Empty: SQLite in a temporary directory.
	DSN string
	// Table is the fallback table.
	Table string
	// SendPolicy is the send-side retry policy (the seed's retry: block).
	SendPolicy policy.Policy
	// PolicySource says where SendPolicy came from, for the story's first lines.
	PolicySource string
	// Serve runs the service until interrupted instead of the scripted story.
	Serve bool
	// Listen is the HTTP address of the service.
	Listen string
	// DelayScale scales the embedded broker's delay levels.
	DelayScale float64
	// Pause is the pause between the story's steps, for a human reader.
	Pause time.Duration
	// Verbose routes the library and client logs to stderr.
	Verbose bool
}

// seedPolicy is the seed service's retry block:
//
//	retry:
//	  max-attempts: 3
//	  init-interval: 1000
//	  multiplier: 2
//
// which policy.Config reads with the same keys. No max-interval is given
// there, so policy.Config caps delays at its default 10s, which the seed's
// two delays (1s, 2s) never reach.
const seedPolicy = "retry:\n  max-attempts: 3\n  init-interval: 1000\n  multiplier: 2\n"

const usageText = `comment-service: a comment API that publishes "comment published" events
through async -> fallback -> retry -> RocketMQ, and a consumer with
RocketMQ-style redelivery and a dead-letter topic.

With no flags it starts an embedded RocketMQ broker and a SQLite database in a
temporary directory, and plays a scripted story (normal traffic, a broker
outage, the relay draining the fallback table, failing consumers, a summary by
message UUID). It exits with status 0 only if no message was lost.

With --rocketmq (or --serve) it runs the service until interrupted instead:
  POST /comments   {"noteId": 1, "content": "nice"}  -> 202 {"uuid": "..."}
  GET  /stats      counters of every layer, and the fallback backlog
  GET  /metrics    Prometheus metrics (middleware/metrics)

Flags (each also read from the environment variable shown):
`

// ParseConfig reads args (without the program name) and the environment
// through lookup. It returns flag.ErrHelp after printing the usage to out
// for -h/--help.
func ParseConfig(args []string, lookup func(string) (string, bool), out io.Writer) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	env := func(name, def string) string {
		if v, ok := lookup(name); ok && v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("comment-service", flag.ContinueOnError)
	fs.SetOutput(out)
	rocketmq := fs.String("rocketmq", env("RELIAMQ_ROCKETMQ", ""),
		"RocketMQ name servers, comma separated (host:9876). [RELIAMQ_ROCKETMQ]\nEmpty: the embedded broker. Implies --serve: faults cannot be injected into a real broker.")
	dsn := fs.String("dsn", env("RELIAMQ_DSN", ""),
		"fallback database. [RELIAMQ_DSN]\n  postgres://user@host:5432/db?sslmode=disable (PostgreSQL, pgx driver)\n  mysql://user:pass@host:3306/db or mysql://user:pass@tcp(host:3306)/db (MySQL/MariaDB)\n  sqlite:/path/file.db (SQLite)\nEmpty: SQLite in a temporary directory, deleted at exit.")
	table := fs.String("table", env("RELIAMQ_TABLE", "reliamq_fallback"), "fallback table, created if missing. [RELIAMQ_TABLE]")
	policyFile := fs.String("policy", env("RELIAMQ_POLICY", ""),
		"YAML file with the send retry policy, Spring Retry keys (max-attempts, init-interval in ms,\nmultiplier, max-interval, schedule, jitter), top level or under retry:. [RELIAMQ_POLICY]\nRELIAMQ_RETRY_MAX_ATTEMPTS and the other RELIAMQ_RETRY_* variables override single keys.\nDefault: the seed's retry: {max-attempts: 3, init-interval: 1000, multiplier: 2}.")
	serve := fs.Bool("serve", envBool(env("RELIAMQ_SERVE", "")), "run the service until interrupted instead of the story. [RELIAMQ_SERVE]")
	listen := fs.String("listen", env("RELIAMQ_LISTEN", ""), "HTTP address. [RELIAMQ_LISTEN]\nDefault 127.0.0.1:8080 with --serve, a free port for the story.")
	scale := fs.Float64("delay-scale", 0.05,
		"embedded broker only: factor applied to RocketMQ's delay levels, 0.05 turns the\nconsumer retry schedule 10s 30s 1m into 500ms 1.5s 3s.")
	pause := fs.Duration("pause", 1500*time.Millisecond, "story only: pause between steps, so a person can read along.")
	verbose := fs.Bool("verbose", envBool(env("RELIAMQ_VERBOSE", "")), "log library and RocketMQ client messages to stderr. [RELIAMQ_VERBOSE]")
	fs.Usage = func() {
		fmt.Fprint(out, usageText)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	cfg := Config{DSN: *dsn, Table: *table, Serve: *serve, Listen: *listen, DelayScale: *scale,
		Pause: *pause, Verbose: *verbose}
	for _, ns := range strings.Split(*rocketmq, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			cfg.NameServers = append(cfg.NameServers, ns)
		}
	}
	if len(cfg.NameServers) > 0 {
		cfg.Serve = true
	}
	if cfg.Serve && cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8080"
	}
	if !(cfg.DelayScale > 0) {
		return Config{}, fmt.Errorf("--delay-scale must be above 0, got %v", cfg.DelayScale)
	}
	if cfg.Pause < 0 {
		return Config{}, fmt.Errorf("--pause must not be negative, got %v", cfg.Pause)
	}

	var (
		pc  policy.Config
		err error
	)
	if *policyFile == "" {
		pc, err = policy.ParseYAML([]byte(seedPolicy))
		cfg.PolicySource = "the seed's retry: {max-attempts: 3, init-interval: 1000, multiplier: 2}"
	} else {
		var data []byte
		data, err = os.ReadFile(*policyFile)
		if err == nil {
			pc, err = policy.ParseYAML(data)
		}
		cfg.PolicySource = *policyFile
	}
	if err != nil {
		return Config{}, fmt.Errorf("--policy: %w", err)
	}
	if err := pc.ApplyEnv("RELIAMQ_RETRY", lookup); err != nil {
		return Config{}, fmt.Errorf("--policy: %w", err)
	}
	if cfg.SendPolicy, err = pc.Policy(); err != nil {
		return Config{}, fmt.Errorf("--policy %s: %w", cfg.PolicySource, err)
	}
	return cfg, nil
}

func envBool(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}
