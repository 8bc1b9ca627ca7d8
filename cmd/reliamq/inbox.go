package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/reliamq/reliamq/adapters/sqlstore"
)

const inboxLong = `The processed-message records of middleware/inbox (default table reliamq_inbox):
which consumer group and handler processed which message UUID, so that a
copy of the message is acknowledged without running the handler again.

Commands:
  ls     per consumer group and handler: records, expired records, oldest;
         with --uuid, the handlers that processed that message
  purge  delete the expired records (past their retention), in batches, as
         the middleware's background purger does

` + exitCodesText

// inboxOptions is one parsed inbox command line.
type inboxOptions struct {
	dsn, table, uuid, output string
	timeout                  time.Duration
	batch                    int
}

func newInboxCommand(e env) *cobra.Command {
	area := &cobra.Command{
		Use:   "inbox",
		Short: "Records of processed messages kept by the inbox middleware (table reliamq_inbox)",
		Long:  inboxLong,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 || args[0] == "help" {
				return cmd.Help()
			}
			return usageError("unknown command %q for %q: want ls or purge", args[0], cmd.CommandPath())
		},
	}
	for _, name := range []string{"ls", "purge"} {
		o := &inboxOptions{}
		short := "List records per consumer group and handler, or the records of one UUID"
		if name == "purge" {
			short = "Delete expired records"
		}
		cmd := &cobra.Command{Use: name + " [flags]", Short: short, Long: short + ".\n\n" + exitCodesText, Args: noArgs}
		fs := cmd.Flags()
		fs.StringVar(&o.dsn, "dsn", os.Getenv("RELIAMQ_DSN"), "inbox database: postgres://..., mysql://..., user@tcp(host)/db, sqlite://path or file:path (env RELIAMQ_DSN)")
		fs.StringVar(&o.table, "table", sqlstore.DefaultInboxTable, "inbox table")
		fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long to wait for the database connection")
		fs.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
		if name == "ls" {
			fs.StringVar(&o.uuid, "uuid", "", "list the records of this message UUID")
		} else {
			fs.IntVar(&o.batch, "batch", 500, "most records deleted per statement")
		}
		cmd.RunE = func(cmd *cobra.Command, _ []string) error {
			err := runInbox(cmd.Context(), name, *o, e)
			var ee *exitError
			if err != nil && !errors.As(err, &ee) {
				err = &exitError{code: exitRuntime, err: err}
			}
			return err
		}
		area.AddCommand(cmd)
	}
	return area
}

func runInbox(ctx context.Context, command string, o inboxOptions, e env) error {
	if o.output != "table" && o.output != "json" {
		return usageError("--output %q: want table or json", o.output)
	}
	if command == "purge" && o.batch <= 0 {
		return usageError("--batch must be positive")
	}
	if err := sqlstore.ValidateTable(o.table); err != nil {
		return usageError("--table %q: not a valid table name (letters, digits and _, at most 63)", o.table)
	}
	db, err := openDatabase(ctx, o.dsn, o.timeout)
	if err != nil {
		return err
	}
	defer func() { _ = db.db.Close() }()
	ib, err := sqlstore.NewInbox(sqlstore.InboxConfig{DB: db.db, Dialect: db.dialect, Table: o.table, Clock: e.clock}, nil)
	if errors.Is(err, sqlstore.ErrMissingTable) {
		return notFoundError("table %s does not exist in %s (check --table): %v", o.table, db.where, err)
	}
	if err != nil {
		return err
	}
	switch {
	case command == "purge":
		total := 0
		for {
			n, err := ib.Purge(ctx, o.batch)
			total += n
			if err != nil {
				return fmt.Errorf("purged %d expired records of table %s, then: %w", total, o.table, err)
			}
			if n < o.batch {
				break
			}
		}
		if o.output == "json" {
			return writeJSON(e.stdout, map[string]int{"purged": total})
		}
		fmt.Fprintf(e.stdout, "Purged %d expired records of table %s in %s.\n", total, o.table, db.where)
		return nil
	case o.uuid != "":
		recs, err := ib.Lookup(ctx, o.uuid)
		if err != nil {
			return err
		}
		if o.output == "json" {
			if recs == nil {
				recs = []sqlstore.InboxRecord{}
			}
			return writeJSON(e.stdout, recs)
		}
		if len(recs) == 0 {
			fmt.Fprintf(e.stderr, "No handler has a record of %s in table %s: a copy of it would run every handler.\n", o.uuid, o.table)
			return nil
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CONSUMER GROUP\tHANDLER\tPROCESSED\tEXPIRES")
		for _, r := range recs {
			fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\n", r.ConsumerGroup, r.Handler,
				humanDuration(e.clock.Now().Sub(r.ProcessedAt)), expiry(e, r.ExpiresAt))
		}
		return tw.Flush()
	}
	groups, err := ib.Groups(ctx)
	if err != nil {
		return err
	}
	if o.output == "json" {
		if groups == nil {
			groups = []sqlstore.InboxGroup{}
		}
		return writeJSON(e.stdout, groups)
	}
	if len(groups) == 0 {
		fmt.Fprintf(e.stderr, "No records in table %s.\n", o.table)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONSUMER GROUP\tHANDLER\tRECORDS\tEXPIRED\tOLDEST")
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s ago\n", g.ConsumerGroup, g.Handler, g.Records, g.Expired,
			humanDuration(e.clock.Now().Sub(g.Oldest)))
	}
	return tw.Flush()
}

func expiry(e env, at time.Time) string {
	if d := at.Sub(e.clock.Now()); d > 0 {
		return "in " + humanDuration(d)
	}
	return "expired"
}
