package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/middleware/redelivery"
)

// command is one command being executed against an open store.
type command struct {
	o     options
	env   env
	db    *database
	store *sqlstore.Store
	sel   selection
}

func execute(ctx context.Context, o options, e env) error {
	db, err := openDatabase(ctx, o.dsn, o.timeout)
	if err != nil {
		return err
	}
	defer func() { _ = db.db.Close() }()
	st, err := db.store(ctx, o.table, e.clock)
	if err != nil {
		return err
	}
	c := &command{o: o, env: e, db: db, store: st, sel: selection{o: o, store: st, env: e}}
	switch o.command {
	case "ls":
		return c.ls(ctx)
	case "show":
		return c.show(ctx)
	case "purge":
		return c.purge(ctx)
	default:
		return c.replay(ctx)
	}
}

func (c *command) where() string {
	return fmt.Sprintf("table %s queue %q", c.store.Table(), c.o.queue)
}

func (c *command) ls(ctx context.Context) error {
	rows, more, err := c.sel.rows(ctx)
	if err != nil {
		return err
	}
	if c.o.json {
		out := make([]rowJSON, 0, len(rows))
		for _, m := range rows {
			out = append(out, c.toJSON(m, false))
		}
		if more {
			fmt.Fprintf(c.env.stderr, "reliamq: showing the first %d rows; use --limit 0 for all\n", len(rows))
		}
		return writeJSON(c.env.stdout, out)
	}
	if len(rows) == 0 {
		fmt.Fprintf(c.env.stderr, "No rows match in %s.\n", c.where())
		return nil
	}
	if err := c.writeTable(c.env.stdout, rows); err != nil {
		return err
	}
	// The count is a note for the reader, not part of the table: stderr, so
	// stdout pipes into other tools as rows only.
	if more {
		fmt.Fprintf(c.env.stderr, "%s shown; more match (use --limit 0 for all).\n", rowsWord(len(rows)))
	} else {
		fmt.Fprintf(c.env.stderr, "%s.\n", rowsWord(len(rows)))
	}
	return nil
}

func (c *command) show(ctx context.Context) error {
	rows, _, err := c.sel.rows(ctx)
	if err != nil {
		return err
	}
	if c.o.json {
		out := make([]rowJSON, 0, len(rows))
		for _, m := range rows {
			out = append(out, c.toJSON(m, true))
		}
		return writeJSON(c.env.stdout, out)
	}
	if len(rows) == 0 {
		fmt.Fprintf(c.env.stderr, "No rows match in %s.\n", c.where())
		return nil
	}
	return c.writeFull(c.env.stdout, rows)
}

func (c *command) purge(ctx context.Context) error {
	rows, _, err := c.sel.rows(ctx)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		if c.o.json {
			return writeJSON(c.env.stdout, map[string]any{"deleted": 0, "ids": []int64{}})
		}
		fmt.Fprintf(c.env.stderr, "No rows match in %s; nothing deleted.\n", c.where())
		return nil
	}
	if c.o.dryRun {
		ids := make([]int64, len(rows))
		for i, m := range rows {
			ids[i] = m.ID
		}
		if c.o.json {
			return writeJSON(c.env.stdout, map[string]any{"dry_run": true, "would_delete": len(ids), "ids": ids})
		}
		if err := c.writeTable(c.env.stdout, rows); err != nil {
			return err
		}
		fmt.Fprintf(c.env.stderr, "Dry run: would delete %s from %s; nothing deleted.\n", rowsWord(len(rows)), c.where())
		return nil
	}
	if !c.o.yes {
		if err := c.confirm(ctx, len(rows)); err != nil {
			return err
		}
	}
	ids := make([]int64, len(rows))
	for i, m := range rows {
		ids[i] = m.ID
	}
	deleted := 0
	for start := 0; start < len(ids); start += pageSize {
		end := min(start+pageSize, len(ids))
		if err := c.store.Delete(ctx, ids[start:end]...); err != nil {
			return fmt.Errorf("deleting rows (%d of %d deleted so far): %w", deleted, len(ids), err)
		}
		deleted = end
	}
	if c.o.json {
		return writeJSON(c.env.stdout, map[string]any{"deleted": deleted, "ids": ids})
	}
	fmt.Fprintf(c.env.stdout, "Deleted %s from %s.\n", rowsWord(deleted), c.where())
	return nil
}

// confirm asks on stderr and reads the answer from stdin. No answer (no
// terminal, an empty pipe) is a refusal: purge never deletes by default.
func (c *command) confirm(ctx context.Context, n int) error {
	fmt.Fprintf(c.env.stderr, "Delete %s from %s? This cannot be undone. Type \"yes\" to confirm: ", rowsWord(n), c.where())
	if c.env.stdin == nil {
		fmt.Fprintln(c.env.stderr)
		return notConfirmedError("no confirmation on stdin; pass --yes to purge without asking")
	}
	type answerLine struct {
		line string
		err  error
	}
	// The read cannot be cancelled; reading in a goroutine lets an interrupt
	// end the command while it waits.
	got := make(chan answerLine, 1)
	go func() {
		line, err := bufio.NewReader(c.env.stdin).ReadString('\n')
		got <- answerLine{line, err}
	}()
	var a answerLine
	select {
	case a = <-got:
	case <-ctx.Done():
		fmt.Fprintln(c.env.stderr)
		return notConfirmedError("interrupted; nothing deleted")
	}
	line, err := a.line, a.err
	answer := strings.ToLower(strings.TrimSpace(line))
	if answer == "" && err != nil {
		fmt.Fprintln(c.env.stderr)
		return notConfirmedError("no confirmation on stdin; pass --yes to purge without asking")
	}
	if answer != "yes" && answer != "y" {
		return notConfirmedError("purge not confirmed (answer %q); nothing deleted", answer)
	}
	return nil
}

// replayReport prints per-message results and the summary.
type replayReport struct {
	c        *command
	mu       sync.Mutex
	matched  int
	replayed int
	failed   int
}

type replayLine struct {
	DryRun bool   `json:"dry_run,omitempty"`
	ID     int64  `json:"id"`
	UUID   string `json:"uuid"`
	Topic  string `json:"topic"`
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// planned reports a row a dry run would replay to topic (or err: why it
// could not be).
func (r *replayReport) planned(m sqlstore.Message, topic string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := replayLine{DryRun: true, ID: m.ID, UUID: m.UUID, Topic: topic, Result: "would_replay"}
	if err != nil {
		r.failed++
		line.Result, line.Error = "would_fail", err.Error()
	}
	if r.c.o.json {
		_ = writeJSON(r.c.env.stdout, line)
		return
	}
	if err != nil {
		fmt.Fprintf(r.c.env.stdout, "would fail    id=%d uuid=%s: %v\n", m.ID, m.UUID, err)
		return
	}
	fmt.Fprintf(r.c.env.stdout, "would replay  id=%d uuid=%s topic=%s\n", m.ID, m.UUID, topic)
}

func (r *replayReport) message(m sqlstore.Message, topic string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := replayLine{ID: m.ID, UUID: m.UUID, Topic: topic, Result: "replayed"}
	if err != nil {
		r.failed++
		line.Result, line.Error = "failed", err.Error()
	} else {
		r.replayed++
	}
	if r.c.o.json {
		_ = writeJSON(r.c.env.stdout, line)
		return
	}
	if err != nil {
		fmt.Fprintf(r.c.env.stdout, "failed    id=%d uuid=%s topic=%s: %v\n", m.ID, m.UUID, topic, err)
		return
	}
	fmt.Fprintf(r.c.env.stdout, "replayed  id=%d uuid=%s topic=%s\n", m.ID, m.UUID, topic)
}

func (r *replayReport) summary() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c.o.dryRun {
		if r.c.o.json {
			_ = writeJSON(r.c.env.stdout, map[string]any{"summary": map[string]any{"dry_run": true,
				"matched": r.matched, "would_replay": r.matched - r.failed, "would_fail": r.failed}})
			return
		}
		fmt.Fprintf(r.c.env.stderr, "Dry run: would replay %d of %s from %s; nothing sent, written or deleted.\n",
			r.matched-r.failed, rowsWord(r.matched), r.c.where())
		return
	}
	if r.c.o.json {
		_ = writeJSON(r.c.env.stdout, map[string]any{"summary": map[string]int{
			"matched": r.matched, "replayed": r.replayed, "failed": r.failed,
			"not_tried": r.matched - r.replayed - r.failed}})
		return
	}
	w := r.c.env.stderr
	fmt.Fprintf(w, "Replayed %d of %s", r.replayed, rowsWord(r.matched))
	if rest := r.matched - r.replayed - r.failed; r.failed > 0 || rest > 0 {
		fmt.Fprintf(w, "; %d failed, %d not tried (still in %s)", r.failed, rest, r.c.where())
	}
	fmt.Fprintln(w, ".")
}

func (c *command) replay(ctx context.Context) error {
	rows, _, err := c.sel.rows(ctx)
	if err != nil {
		return err
	}
	rep := &replayReport{c: c, matched: len(rows)}
	defer rep.summary()
	if len(rows) == 0 {
		return nil
	}
	if c.o.dryRun {
		return c.dryRunReplay(rows, rep)
	}
	pub, err := c.replayPublisher(ctx)
	if err != nil {
		return err
	}
	if pub != nil {
		defer func() { _ = pub.Close() }()
	}
	if c.o.area == "dlq" {
		return c.replayDeadLetters(ctx, rows, pub, rep)
	}
	return c.replayFallback(ctx, rows, pub, rep)
}

// replayPublisher returns the RocketMQ publisher, or for --to-store in the
// dlq area a store publisher; nil for fallback rows going back to the store,
// which are moved with SQL.
func (c *command) replayPublisher(ctx context.Context) (message.Publisher, error) {
	if c.o.rocketmq != "" {
		var servers []string
		for _, s := range strings.Split(c.o.rocketmq, ",") {
			if s = strings.TrimSpace(s); s != "" {
				servers = append(servers, s)
			}
		}
		// The client reports an unreachable name server as "route info not
		// found", which reads as a missing topic: ask the name servers first.
		if err := reachable(ctx, servers, c.o.timeout); err != nil {
			return nil, err
		}
		// RetryTopicMarshaler lets a dead letter sent to %RETRY%<group>
		// (--retry-topic) reach that group's subscription.
		pub, err := rocketmq.NewPublisher(rocketmq.PublisherConfig{NameServers: servers,
			SendTimeout: c.o.rocketmqSendTimeout, Marshaler: rocketmq.RetryTopicMarshaler{}}, nil)
		if err != nil {
			return nil, usageError("--rocketmq %q: %v", c.o.rocketmq, err)
		}
		return pub, nil
	}
	if c.o.area != "dlq" {
		return nil, nil
	}
	target, err := c.targetStore(ctx)
	if err != nil {
		return nil, err
	}
	return sqlstore.NewPublisher(sqlstore.PublisherConfig{Store: target, Queue: c.o.toQueue})
}

func (c *command) targetStore(ctx context.Context) (*sqlstore.Store, error) {
	table := c.o.toTable
	if table == "" {
		table = c.store.Table()
		if c.o.area == "dlq" {
			table = sqlstore.DefaultTable
		}
	}
	if table == c.store.Table() {
		return c.store, nil
	}
	st, err := c.db.store(ctx, table, c.env.clock)
	if err != nil {
		return nil, fmt.Errorf("--to-table: %w", err)
	}
	return st, nil
}

// pacer spaces sends --rate per second apart on the command's clock.
type pacer struct {
	c        *command
	interval time.Duration
	next     time.Time
}

func (p *pacer) wait(ctx context.Context) error {
	if p.interval <= 0 {
		return ctx.Err()
	}
	now := p.c.env.clock.Now()
	if d := p.next.Sub(now); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.c.env.clock.After(d):
		}
		now = p.c.env.clock.Now()
	}
	p.next = now.Add(p.interval)
	return ctx.Err()
}

func (c *command) replayFallback(ctx context.Context, rows []sqlstore.Message, pub message.Publisher, rep *replayReport) error {
	p := &pacer{c: c}
	if c.o.rate > 0 {
		p.interval = time.Duration(float64(time.Second) / c.o.rate)
	}
	var target *sqlstore.Store
	if pub == nil {
		var err error
		if target, err = c.targetStore(ctx); err != nil {
			return err
		}
	}
	for _, m := range rows {
		if err := p.wait(ctx); err != nil {
			return fmt.Errorf("replay interrupted: %w", err)
		}
		var err error
		if pub != nil {
			err = c.publishRow(ctx, pub, m)
		} else {
			err = c.requeueRow(ctx, target, m)
		}
		rep.message(m, m.Topic, err)
		if err != nil {
			return fmt.Errorf("replay stopped at row %d: %w", m.ID, err)
		}
	}
	return nil
}

// publishRow sends a row's message to its topic and deletes the row. A row
// sent but not deleted is reported: replaying it again would duplicate it.
func (c *command) publishRow(ctx context.Context, pub message.Publisher, m sqlstore.Message) error {
	msg := m.ToMessage()
	msg.SetContext(ctx)
	if err := pub.Publish(m.Topic, msg); err != nil {
		return err
	}
	if err := c.store.Delete(context.WithoutCancel(ctx), m.ID); err != nil {
		return fmt.Errorf("published, but deleting the row failed (it would be sent again): %w", err)
	}
	return nil
}

// requeueRow makes a row due now for the relay: in place when it stays in
// its queue, otherwise moved (with its attempt count and age reset, so the
// relay policy starts afresh) in one transaction.
func (c *command) requeueRow(ctx context.Context, target *sqlstore.Store, m sqlstore.Message) error {
	now := c.env.clock.Now()
	if target == c.store && c.o.toQueue == c.o.queue {
		return c.store.Requeue(ctx, now, m.ID)
	}
	moved := m
	moved.ID, moved.Queue, moved.Attempts = 0, c.o.toQueue, 0
	moved.NextAttemptAt, moved.CreatedAt = now, now
	moved.LeasedBy, moved.LeasedUntil = "", time.Time{}
	tx, err := c.db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("moving row: %w", err)
	}
	if err := target.InsertTx(ctx, tx, moved); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := c.store.DeleteTx(ctx, tx, m.ID); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("moving row: %w", err)
	}
	return nil
}

// reachable returns nil when at least one name server accepts a TCP
// connection, and otherwise an error that says the name servers are
// unreachable (exit 1).
func reachable(ctx context.Context, servers []string, timeout time.Duration) error {
	if len(servers) == 0 {
		return usageError("--rocketmq names no name server")
	}
	var errs []error
	d := net.Dialer{Timeout: timeout}
	for _, s := range servers {
		conn, err := d.DialContext(ctx, "tcp", s)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("cannot reach the RocketMQ name server %s (is --rocketmq right and the name server running?): %w",
		strings.Join(servers, ","), errors.Join(errs...))
}

// replayConfig is the part of the redelivery.ReplayConfig the flags decide.
func (c *command) replayConfig() redelivery.ReplayConfig {
	return redelivery.ReplayConfig{KeepReconsumeTimes: c.o.keepReconsumeTimes,
		RetryTopic: c.o.retryTopic, ToOriginalTopic: c.o.toOriginalTopic}
}

// dryRunReplay reports where each row would go, touching nothing.
func (c *command) dryRunReplay(rows []sqlstore.Message, rep *replayReport) error {
	cfg := c.replayConfig()
	for _, m := range rows {
		topic, err := m.Topic, error(nil)
		if c.o.area == "dlq" {
			topic, err = cfg.Destination(m.ToMessage())
		}
		rep.planned(m, topic, err)
	}
	return nil
}

// replayDeadLetters feeds the rows, one at a time, to redelivery.Replay, which
// publishes each to its retry topic (only the failed consumer group reads it;
// --retry-topic names it, --to-original-topic republishes to every group)
// with the dead-letter metadata removed and the reconsume count reset (unless
// --keep-reconsume-times). A row is deleted once Replay acknowledged its
// message.
func (c *command) replayDeadLetters(ctx context.Context, rows []sqlstore.Message, pub message.Publisher, rep *replayReport) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs := make(chan *message.Message)
	results := make(chan redelivery.ReplayResult, 1)
	var feedErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(msgs)
		for _, m := range rows {
			msg := m.ToMessage()
			select {
			case msgs <- msg:
			case <-ctx.Done():
				return
			}
			var res redelivery.ReplayResult
			select {
			case res = <-results:
			case <-ctx.Done():
				// Replay reports a message before it returns, and ctx is
				// cancelled only after that: take a result already there.
				select {
				case res = <-results:
				default:
					return
				}
			}
			topic := res.Topic
			if topic == "" {
				topic = c.sel.topicOf(m)
			}
			if res.Err != nil {
				rep.message(m, topic, res.Err)
				return
			}
			if err := c.store.Delete(context.WithoutCancel(ctx), m.ID); err != nil {
				feedErr = fmt.Errorf("row %d was replayed, but deleting it failed (it would be replayed again): %w", m.ID, err)
				rep.message(m, topic, feedErr)
				cancel()
				return
			}
			rep.message(m, topic, nil)
		}
	}()
	cfg := c.replayConfig()
	cfg.Messages, cfg.Publisher = msgs, pub
	cfg.Rate, cfg.IdleTimeout, cfg.Clock = c.o.rate, -1, c.env.clock
	cfg.Hooks = append(cfg.Hooks, replayResults(results))
	_, err := redelivery.Replay(ctx, cfg, nil)
	cancel()
	wg.Wait()
	if feedErr != nil {
		return feedErr
	}
	if err != nil {
		if errors.Is(err, redelivery.ErrMissingRetryTopic) {
			return fmt.Errorf("replay stopped: %w; pass --retry-topic (Native mode: %%RETRY%%<RocketMQ group>) or --to-original-topic", err)
		}
		return fmt.Errorf("replay stopped: %w", err)
	}
	return nil
}

// replayResults is a redelivery.ReplayedHook that sends each result on.
type replayResults chan<- redelivery.ReplayResult

func (c replayResults) OnReplayed(r redelivery.ReplayResult) { c <- r }
