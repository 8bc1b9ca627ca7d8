package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/reliamq/reliamq/pkg/clock"
)

// version is the command's version; release builds set it with
// -ldflags "-X main.version=v1.2.3". Otherwise the module version from the
// build information is used.
var version = ""

const exitCodesText = `Exit codes:
  0  success (also when no row matched)
  1  runtime error: database or broker failure (unreachable name server included),
     replay stopped on a message
  2  usage error: bad flags or arguments, unrecognised or malformed DSN
  3  not found: missing database file or table, a --topic or --consumer-group
     no row of the queue has, unknown id
  4  purge not confirmed: nothing deleted`

const rootLong = `reliamq inspects and replays the messages reliamq keeps in SQL tables.

Areas:
  fallback  rows of the fallback store: messages whose send failed, waiting for
            the relay (queue ""), and rows the relay poisoned (--queue poison)
  dlq       dead letters written by the redelivery middleware through a
            sqlstore.Publisher (default table reliamq_dlq)
  inbox     records of processed messages kept by the inbox middleware
            (default table reliamq_inbox): ls, purge; see reliamq inbox --help

Commands of each area:
  ls      list matching rows (a table, or a JSON array with -o json)
  show    print rows in full, payload and metadata included (ids, or filters)
  replay  publish matching rows again, at --rate messages per second, reporting
          each message: to RocketMQ (--rocketmq host:9876) or back into the
          store as rows due now (--to-store); a replayed row is deleted.
          Dead letters go back to the failed consumer group only (its retry
          topic), unless --to-original-topic
  purge   delete matching rows, after confirmation on stdin (or --yes)

Tables and queue listings go to stdout, notes and row counts to stderr.
The DSN may also come from the RELIAMQ_DSN environment variable.

` + exitCodesText

// options is one parsed command line.
type options struct {
	area, command string

	dsn, table, queue string
	timeout           time.Duration

	topic, errorContains, group string
	olderThan                   time.Duration
	limit                       int
	ids                         []int64

	output string // "table" or "json"
	json   bool   // output == "json"
	yes    bool
	dryRun bool

	rate                float64
	rocketmq            string
	toStore             bool
	toTable, toQueue    string
	keepReconsumeTimes  bool
	retryTopic          string
	toOriginalTopic     bool
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
	root := newRootCommand(e)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// Cobra's own errors: unknown command or flag, bad flag value.
		err = &exitError{code: exitUsage, err: err}
	}
	fmt.Fprintf(e.stderr, "reliamq: %v\n", err)
	code := exitCode(err)
	if code == exitUsage {
		fmt.Fprintf(e.stderr, "Run %q for usage.\n", cmd.CommandPath()+" --help")
	}
	return code
}

func versionString() string {
	v := version
	rev := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
			if s.Key == "vcs.modified" && s.Value == "true" && rev != "" {
				rev += "-dirty"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	out := v + " " + runtime.Version()
	if rev != "" {
		out += " " + rev
	}
	return out
}

func newRootCommand(e env) *cobra.Command {
	root := &cobra.Command{
		Use:           "reliamq",
		Short:         "Inspect, replay and purge fallback rows and dead letters",
		Long:          rootLong,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		// Without arguments: the help, exit 0 (as kubectl and gh do).
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return usageError("unknown command %q for %q: want fallback, dlq, inbox, version, completion or help", args[0], cmd.CommandPath())
		},
	}
	root.SetVersionTemplate("reliamq {{.Version}}\n")
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "reliamq %s\n", versionString())
			return nil
		},
	})
	for _, area := range []struct{ name, short string }{
		{"fallback", "Rows of the fallback store (the relay's queue, or --queue poison)"},
		{"dlq", "Dead letters kept in SQL by a sqlstore.Publisher (table reliamq_dlq)"},
	} {
		a := &cobra.Command{
			Use:   area.name,
			Short: area.short,
			Long:  area.short + ".\n\n" + exitCodesText,
			Args:  cobra.ArbitraryArgs,
			// "reliamq fallback help" prints the area's help, as
			// "reliamq fallback --help" does; another word is an error.
			RunE: func(cmd *cobra.Command, args []string) error {
				if len(args) == 0 || args[0] == "help" {
					return cmd.Help()
				}
				return usageError("unknown command %q for %q: want ls, show, replay or purge", args[0], cmd.CommandPath())
			},
		}
		for _, c := range []string{"ls", "show", "replay", "purge"} {
			a.AddCommand(newCommand(e, area.name, c))
		}
		root.AddCommand(a)
	}
	root.AddCommand(newInboxCommand(e))
	return root
}

// noArgs refuses arguments as a usage error naming the command.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

var commandShort = map[string]string{
	"ls":     "List matching rows",
	"show":   "Print rows in full, payload and metadata included",
	"replay": "Publish matching rows again and delete them",
	"purge":  "Delete matching rows after confirmation",
}

func newCommand(e env, area, command string) *cobra.Command {
	o := &options{area: area, command: command}
	cmd := &cobra.Command{
		Use:   command + " [flags] [ids...]",
		Short: commandShort[command],
		Long:  commandShort[command] + ".\n\n" + exitCodesText,
		Args:  cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	defTable := "reliamq_fallback"
	if area == "dlq" {
		defTable = "reliamq_dlq"
	}
	fs.StringVar(&o.dsn, "dsn", os.Getenv("RELIAMQ_DSN"), "store database: postgres://..., mysql://..., user@tcp(host)/db, sqlite://path or file:path (env RELIAMQ_DSN)")
	fs.StringVar(&o.table, "table", defTable, "store table")
	fs.StringVar(&o.queue, "queue", "", `store queue ("" is the relay's queue; the relay's poison rows are in "poison")`)
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the database (and name server) connection")
	fs.StringVar(&o.topic, "topic", "", "only rows of this topic (dlq: the topic the message was consumed from)")
	fs.Var(durationValue{&o.olderThan}, "older-than", "only rows stored at least this long ago (90s, 15m, 2h, 3d)")
	fs.StringVar(&o.errorContains, "error-contains", "", "only rows whose first or last error contains this text")
	if area == "dlq" {
		fs.StringVar(&o.group, "consumer-group", "", "only dead letters of this consumer group")
	}
	defLimit := 0
	if command == "ls" {
		defLimit = 100
	}
	fs.IntVar(&o.limit, "limit", defLimit, "most rows handled, 0 for all")
	fs.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp))
	fs.BoolVar(&o.json, "json", false, "same as -o json")
	// Deprecated alias, hidden from the help; a note on stderr when used
	// (cobra's own deprecation note would go to stdout with the output).
	_ = fs.MarkHidden("json")
	switch command {
	case "purge":
		fs.BoolVarP(&o.yes, "yes", "y", false, "delete without asking for confirmation")
		fs.BoolVar(&o.dryRun, "dry-run", false, "list the rows that would be deleted; delete nothing")
	case "replay":
		fs.BoolVar(&o.dryRun, "dry-run", false, "list the rows and where each would go; send, write and delete nothing")
		fs.Float64Var(&o.rate, "rate", 100, "most messages replayed per second, 0 for no limit")
		fs.StringVar(&o.rocketmq, "rocketmq", "", "publish to RocketMQ through these name servers (host:9876[,host:9876])")
		fs.DurationVar(&o.rocketmqSendTimeout, "send-timeout", 3*time.Second, "RocketMQ send timeout per message")
		fs.BoolVar(&o.toStore, "to-store", false, "write the messages back into the store as rows due now, for the relay")
		toTableDefault := "same as --table"
		if area == "dlq" {
			toTableDefault = "reliamq_fallback"
		}
		fs.StringVar(&o.toTable, "to-table", "", "with --to-store: destination table (default "+toTableDefault+")")
		fs.StringVar(&o.toQueue, "to-queue", "", `with --to-store: destination queue (default "", the relay's)`)
		if area == "dlq" {
			fs.BoolVar(&o.keepReconsumeTimes, "keep-reconsume-times", false, "keep the reconsume count, so the message resumes its retry schedule")
			fs.StringVar(&o.retryTopic, "retry-topic", "", "send every dead letter to this topic (default: each one's recorded retry topic, which only the failed group consumes; Native mode records none: %RETRY%<group>)")
			fs.BoolVar(&o.toOriginalTopic, "to-original-topic", false, "republish to the original topic instead, where every consumer group receives the message again")
		}
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := o.finish(fs, args); err != nil {
			return err
		}
		if fs.Changed("json") {
			fmt.Fprintln(e.stderr, "reliamq: --json is deprecated; use -o json")
		}
		err := execute(cmd.Context(), *o, e)
		if err != nil {
			var ee *exitError
			if !errors.As(err, &ee) {
				err = &exitError{code: exitRuntime, err: err}
			}
		}
		return err
	}
	return cmd
}

// finish checks the parsed flags and reads the row ids.
func (o *options) finish(fs *pflag.FlagSet, args []string) error {
	for _, p := range args {
		id, err := strconv.ParseInt(p, 10, 64)
		if err != nil || id <= 0 {
			return usageError("%q is not a row id (a positive integer)", p)
		}
		o.ids = append(o.ids, id)
	}
	if o.json {
		if fs.Changed("output") && o.output != "json" {
			return usageError("--json contradicts --output %s", o.output)
		}
		o.output = "json"
	}
	switch o.output {
	case "json":
		o.json = true
	case "table":
	default:
		return usageError("--output %q: want table or json", o.output)
	}
	if o.limit < 0 {
		return usageError("--limit must not be negative")
	}
	if o.command == "replay" {
		if o.rate < 0 {
			return usageError("--rate must not be negative")
		}
		if (o.rocketmq == "") == !o.toStore {
			return usageError("replay needs exactly one destination: --rocketmq host:port or --to-store")
		}
		if !o.toStore && (o.toTable != "" || o.toQueue != "") {
			return usageError("--to-table and --to-queue need --to-store")
		}
		if o.rocketmqSendTimeout <= 0 {
			return usageError("--send-timeout must be positive")
		}
		if o.retryTopic != "" && o.toOriginalTopic {
			return usageError("--retry-topic and --to-original-topic exclude each other")
		}
	}
	if o.command == "purge" && o.dryRun && o.yes {
		return usageError("--dry-run and --yes exclude each other")
	}
	if o.command == "show" && len(o.ids) == 0 && o.topic == "" && o.olderThan == 0 && o.errorContains == "" && o.group == "" {
		return usageError("show needs row ids or a filter (--topic, --older-than, --error-contains)")
	}
	return nil
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

func (v durationValue) Type() string { return "duration" }

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
