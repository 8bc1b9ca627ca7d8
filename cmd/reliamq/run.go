package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/reliamq/reliamq/pkg/clock"
)

const usageText = `reliamq inspects and replays the messages reliamq keeps in SQL tables.

Usage:
  reliamq fallback ls|show|replay|purge [flags] [ids...]
  reliamq dlq      ls|show|replay|purge [flags] [ids...]

Areas:
  fallback  rows of the fallback store: messages whose send failed, waiting for
            the relay (queue ""), and rows the relay poisoned (--queue poison)
  dlq       dead letters written by the redelivery middleware through a
            sqlstore.Publisher (default table reliamq_dlq)

Commands:
  ls      list matching rows (a table, or a JSON array with --json)
  show    print rows in full, payload and metadata included (ids, or filters)
  replay  publish matching rows again, at --rate messages per second, reporting
          each message: to RocketMQ (--rocketmq host:9876) or back into the
          store as rows due now (--to-store); a replayed row is deleted
  purge   delete matching rows, after confirmation on stdin (or --yes)

Exit codes:
  0  success (also when no row matched)
  1  runtime error: database or broker failure, replay stopped on a message
  2  usage error: bad flags or arguments, unrecognised or malformed DSN
  3  not found: missing database file or table, unknown topic, unknown id
  4  purge not confirmed: nothing deleted

Run "reliamq <area> <command> --help" for the flags of a command.
The DSN may also come from the RELIAMQ_DSN environment variable.
`

// options is one parsed command line.
type options struct {
	area, command string

	dsn, table, queue string
	timeout           time.Duration

	topic, errorContains, group string
	olderThan                   time.Duration
	limit                       int
	ids                         []int64

	json bool
	yes  bool

	rate                float64
	rocketmq            string
	toStore             bool
	toTable, toQueue    string
	keepReconsumeTimes  bool
	rocketmqSendTimeout time.Duration
}

// env is what a command needs from its surroundings; tests replace parts.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	clock          clock.Clock
}

// run executes one reliamq command line and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(ctx, args, env{stdin: stdin, stdout: stdout, stderr: stderr, clock: clock.Real{}})
}

// runWith is run with every dependency given, so tests can fake the clock.
func runWith(ctx context.Context, args []string, e env) int {
	stdout, stderr := e.stdout, e.stderr
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	opts, err := parseArgs(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err == nil {
		err = execute(ctx, opts, e)
	}
	if err != nil {
		fmt.Fprintf(stderr, "reliamq: %v\n", err)
		if exitCode(err) == exitUsage {
			fmt.Fprintln(stderr, `Run "reliamq --help" for usage.`)
		}
	}
	return exitCode(err)
}

func parseArgs(args []string, stdout, stderr io.Writer) (options, error) {
	var o options
	if len(args) < 2 {
		return o, usageError("want an area and a command, for example: reliamq fallback ls --dsn ...")
	}
	o.area, o.command = args[0], args[1]
	if o.area != "fallback" && o.area != "dlq" {
		return o, usageError("unknown area %q: want fallback or dlq", o.area)
	}
	switch o.command {
	case "ls", "show", "replay", "purge":
	default:
		return o, usageError("unknown command %q: want ls, show, replay or purge", o.command)
	}

	fs := flag.NewFlagSet("reliamq "+o.area+" "+o.command, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defTable := "reliamq_fallback"
	if o.area == "dlq" {
		defTable = "reliamq_dlq"
	}
	fs.StringVar(&o.dsn, "dsn", os.Getenv("RELIAMQ_DSN"), "store database: postgres://..., mysql://..., user@tcp(host)/db, sqlite://path or file:path (env RELIAMQ_DSN)")
	fs.StringVar(&o.table, "table", defTable, "store table")
	fs.StringVar(&o.queue, "queue", "", `store queue ("" is the relay's queue; the relay's poison rows are in "poison")`)
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the database connection")
	fs.StringVar(&o.topic, "topic", "", "only rows of this topic (dlq: the topic the message was consumed from)")
	fs.Var(durationValue{&o.olderThan}, "older-than", "only rows stored at least this long ago (90s, 15m, 2h, 3d)")
	fs.StringVar(&o.errorContains, "error-contains", "", "only rows whose first or last error contains this text")
	if o.area == "dlq" {
		fs.StringVar(&o.group, "consumer-group", "", "only dead letters of this consumer group")
	}
	defLimit := 0
	if o.command == "ls" {
		defLimit = 100
	}
	fs.IntVar(&o.limit, "limit", defLimit, "most rows handled, 0 for all")
	fs.BoolVar(&o.json, "json", false, "machine-readable JSON output")
	switch o.command {
	case "purge":
		fs.BoolVar(&o.yes, "yes", false, "delete without asking for confirmation")
	case "replay":
		fs.Float64Var(&o.rate, "rate", 100, "most messages replayed per second, 0 for no limit")
		fs.StringVar(&o.rocketmq, "rocketmq", "", "publish to RocketMQ through these name servers (host:9876[,host:9876])")
		fs.DurationVar(&o.rocketmqSendTimeout, "send-timeout", 3*time.Second, "RocketMQ send timeout per message")
		fs.BoolVar(&o.toStore, "to-store", false, "write the messages back into the store as rows due now, for the relay")
		toTableDefault := "same as --table"
		if o.area == "dlq" {
			toTableDefault = "reliamq_fallback"
		}
		fs.StringVar(&o.toTable, "to-table", "", "with --to-store: destination table (default "+toTableDefault+")")
		fs.StringVar(&o.toQueue, "to-queue", "", `with --to-store: destination queue (default "", the relay's)`)
		if o.area == "dlq" {
			fs.BoolVar(&o.keepReconsumeTimes, "keep-reconsume-times", false, "keep the reconsume count, so the message resumes its retry schedule")
		}
	}
	fs.Usage = func() {}

	rest := args[2:]
	var positional []string
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printCommandHelp(stdout, fs)
				return o, err
			}
			return o, usageError("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	for _, p := range positional {
		id, err := strconv.ParseInt(p, 10, 64)
		if err != nil || id <= 0 {
			return o, usageError("%q is not a row id (a positive integer)", p)
		}
		o.ids = append(o.ids, id)
	}
	if o.limit < 0 {
		return o, usageError("--limit must not be negative")
	}
	if o.command == "replay" {
		if o.rate < 0 {
			return o, usageError("--rate must not be negative")
		}
		if (o.rocketmq == "") == !o.toStore {
			return o, usageError("replay needs exactly one destination: --rocketmq host:port or --to-store")
		}
		if !o.toStore && (o.toTable != "" || o.toQueue != "") {
			return o, usageError("--to-table and --to-queue need --to-store")
		}
		if o.rocketmqSendTimeout <= 0 {
			return o, usageError("--send-timeout must be positive")
		}
	}
	if o.command == "show" && len(o.ids) == 0 && o.topic == "" && o.olderThan == 0 && o.errorContains == "" && o.group == "" {
		return o, usageError("show needs row ids or a filter (--topic, --older-than, --error-contains)")
	}
	return o, nil
}

func printCommandHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s [flags] [ids...]\n\nFlags:\n", fs.Name())
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprint(w, "\nExit codes: 0 ok, 1 runtime error, 2 usage error, 3 not found, 4 purge not confirmed.\n")
}

// durationValue parses Go durations plus a "d" (24h) suffix, which is how
// operators think about old rows.
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil || *v.d == 0 {
		return ""
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("invalid duration %q", s)
		}
		*v.d = time.Duration(n * float64(24*time.Hour))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("invalid duration %q (want 90s, 15m, 2h or 3d)", s)
	}
	*v.d = d
	return nil
}
