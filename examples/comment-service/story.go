package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reliamq/reliamq/adapters/rocketmq"
	"github.com/reliamq/reliamq/adapters/rocketmq/rocketmqtest"
	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/examples/internal/exampledb"
	"github.com/reliamq/reliamq/middleware/async"
	"github.com/reliamq/reliamq/middleware/fallback"
	"github.com/reliamq/reliamq/middleware/metrics"
	"github.com/reliamq/reliamq/middleware/redelivery"
	"github.com/reliamq/reliamq/middleware/retry"
	"github.com/reliamq/reliamq/pkg/metadata"
	"github.com/reliamq/reliamq/pkg/policy"
)

// StoryConfig configures RunStory.
type StoryConfig struct {
	// Out receives the narration. Required.
	Out io.Writer
	// DSN selects the fallback database (see exampledb); "" is a temporary
	// SQLite file.
	DSN string
	// Table is the fallback table. Default "reliamq_fallback".
	Table string
	// SendPolicy is the send-side retry. Default: the seed's policy.
	SendPolicy policy.Policy
	// PolicySource describes SendPolicy in the narration.
	PolicySource string
	// DelayScale scales the embedded broker's delay levels. Default 0.05.
	DelayScale float64
	// Pause is the pause between steps. Zero: none.
	Pause time.Duration
	// Logger receives the libraries' logs. Default: none.
	Logger watermill.LoggerAdapter
}

// consumerRetries is how many redeliveries a failing comment gets before the
// dead-letter topic: RocketMQ's schedule, cut to its first three steps so the
// story ends in seconds.
const consumerRetries = 3

// The story's comments. "flaky" ones fail twice then succeed; the "poison"
// one always fails.
var (
	normalComments = []Comment{
		{NoteID: 1, Content: "Great write-up on back-pressure."},
		{NoteID: 1, Content: "The CallerRuns part saved my weekend."},
		{NoteID: 2, Content: "Does this work with MariaDB too?"},
		{NoteID: 3, Content: "Bookmarked."},
	}
	outageComments = []Comment{
		{NoteID: 2, Content: "Posted while the broker was down."},
		{NoteID: 3, Content: "Still answering fast, nice."},
		{NoteID: 4, Content: "Where does my event go now?"},
		{NoteID: 4, Content: "Into the fallback table, apparently."},
		{NoteID: 5, Content: "And the relay sends it later."},
	}
	flakyComment  = Comment{NoteID: 6, Content: "flaky: the counter database times out twice"}
	poisonComment = Comment{NoteID: 7, Content: "poison: the counter rejects this one every time"}
)

// narrator prints timestamped lines; safe for concurrent use (hooks run on
// many goroutines).
type narrator struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
	// posted are the events whose POST line was printed; held are the lines
	// about events whose POST line was not printed yet. The pipeline can act
	// on an event (a failed send, a consumer run) before the HTTP client has
	// read the 202 for it: those lines wait, so that causes come before
	// effects.
	posted map[string]bool
	held   map[string][]string
}

func (n *narrator) line(format string, args ...any) string {
	return fmt.Sprintf("[%5.1fs] %s\n", time.Since(n.start).Seconds(), fmt.Sprintf(format, args...))
}

func (n *narrator) say(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprint(n.out, n.line(format, args...))
}

// sayAbout prints a line about event id, after the event's POST line.
func (n *narrator) sayAbout(id, format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.line(format, args...)
	if n.posted[id] {
		fmt.Fprint(n.out, l)
		return
	}
	if n.held == nil {
		n.held = map[string][]string{}
	}
	n.held[id] = append(n.held[id], l)
}

// sayPosted prints the POST line of event id, then the lines held for it.
func (n *narrator) sayPosted(id, format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprint(n.out, n.line(format, args...))
	if n.posted == nil {
		n.posted = map[string]bool{}
	}
	n.posted[id] = true
	for _, l := range n.held[id] {
		fmt.Fprint(n.out, l)
	}
	delete(n.held, id)
}

// flush prints the lines still held (events whose POST never answered).
func (n *narrator) flush() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, ls := range n.held {
		for _, l := range ls {
			fmt.Fprint(n.out, l)
		}
		delete(n.held, id)
	}
}

func (n *narrator) step(title string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.out, "\n== %s\n", title)
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func ms(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Microsecond).String()
	}
}

// RunStory plays the scripted demo on an embedded RocketMQ broker: normal
// traffic, a broker outage absorbed by retries and the fallback table, the
// relay draining the table, a failing consumer redelivered on RocketMQ's
// (scaled) schedule with one message dead-lettered, and a summary by UUID.
// It returns the summary; the error reports a step that could not run (the
// summary then covers what happened so far).
func RunStory(ctx context.Context, cfg StoryConfig) (Summary, error) {
	if cfg.Table == "" {
		cfg.Table = sqlstore.DefaultTable
	}
	if cfg.DelayScale <= 0 {
		cfg.DelayScale = 0.05
	}
	if cfg.SendPolicy.MaxAttempts == 0 && cfg.SendPolicy.Backoff == nil {
		p, err := policy.FromYAML([]byte(seedPolicy))
		if err != nil {
			return Summary{}, err
		}
		cfg.SendPolicy = p
		cfg.PolicySource = "the seed's retry: {max-attempts: 3, init-interval: 1000, multiplier: 2}"
	}
	if cfg.Logger == nil {
		cfg.Logger = watermill.NopLogger{}
	}
	n := &narrator{out: cfg.Out, start: time.Now()}
	led := newLedger()
	var (
		stored, relaySent, sendRetries atomic.Int64
		dlqID                          atomic.Value // string: the poison comment's UUID
		consumerPolicy                 = policy.RocketMQ().WithMaxRetries(consumerRetries)
	)
	dlqID.Store("")
	pause := func() error {
		if cfg.Pause <= 0 {
			return ctx.Err()
		}
		select {
		case <-time.After(cfg.Pause):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	broker, err := rocketmqtest.New(rocketmqtest.Config{DelayScale: cfg.DelayScale, LongPollHold: 200 * time.Millisecond})
	if err != nil {
		return Summary{}, fmt.Errorf("embedded broker: %w", err)
	}
	defer broker.Close()
	db, err := exampledb.Open(cfg.DSN)
	if err != nil {
		return Summary{}, err
	}
	defer db.Close()
	st, err := sqlstore.New(sqlstore.Config{DB: db.DB, Dialect: db.Dialect, Table: cfg.Table, AutoInitialize: true}, cfg.Logger)
	if err != nil {
		return Summary{}, err
	}
	scaled := func(d time.Duration) time.Duration { return time.Duration(float64(d) * cfg.DelayScale) }

	// Relay failures since the last send, and an outage line waiting for
	// that many of them (0: none waiting).
	var relayFails, outageAfter atomic.Int64
	ev := &Events{
		SendRetry: func(p retry.Params) {
			sendRetries.Add(1)
			n.sayAbout(p.Messages[0].UUID, "  retry     %s attempt %d failed (%s); next attempt in %s", short(p.Messages[0].UUID), p.Attempt,
				brief(p.Err), ms(p.Delay))
		},
		Stored: func(p fallback.StoredParams) {
			stored.Add(1)
			n.sayAbout(p.UUID, "  fallback  %s: retries exhausted, row written to %s", short(p.UUID), cfg.Table)
		},
		StoreFailed: func(p fallback.StoreFailedParams) {
			n.sayAbout(p.UUID, "  fallback  %s: NOT STORED: send: %s; store: %s", short(p.UUID), brief(p.SendErr), brief(p.StoreErr))
		},
		AsyncResult: func(r async.Result) {
			if r.Err != nil {
				for _, m := range r.Messages {
					n.sayAbout(m.UUID, "  async     %s: publish failed and reported to the caller: %s", short(m.UUID), brief(r.Err))
				}
			}
		},
		RelaySent: func(p fallback.SentParams) {
			relaySent.Add(1)
			relayFails.Store(0)
			n.sayAbout(p.UUID, "  relay     %s resent from row %d after %s in the table (relay attempt %d); row deleted",
				short(p.UUID), p.RowID, ms(p.Age), p.Attempt)
		},
		RelayFailed: func(p fallback.FailedParams) {
			n.sayAbout(p.UUID, "  relay     %s row %d: resend %d failed (%s); next try in %s", short(p.UUID), p.RowID, p.Attempt,
				brief(p.Err), ms(time.Until(p.NextAttemptAt)))
			// The relay reports the outage before the failures that caused
			// it: its line waits until they are printed.
			if k := relayFails.Add(1); k >= outageAfter.Load() && outageAfter.Load() > 0 {
				outageAfter.Store(0)
				n.say("  relay     %d sends failed in a row: the broker looks down, probing with one row at a time", k)
			}
		},
		RelayOutage: func(p fallback.OutageParams) {
			if p.Down {
				if int64(p.ConsecutiveFailures) <= relayFails.Load() {
					n.say("  relay     %d sends failed in a row: the broker looks down, probing with one row at a time",
						p.ConsecutiveFailures)
				} else {
					outageAfter.Store(int64(p.ConsecutiveFailures))
				}
			} else {
				n.say("  relay     a probe went through: the broker is back, draining in batches")
			}
		},
		ConsumeResult: func(c Comment, reconsume int) error {
			switch {
			case strings.HasPrefix(c.Content, "flaky:") && reconsume < 2:
				return errors.New("counter database timeout")
			case strings.HasPrefix(c.Content, "poison:"):
				return errors.New("counter rejects the comment")
			}
			return nil
		},
		Consumed: func(msg *message.Message, c Comment, err error) {
			reconsume := 0
			_, _ = fmt.Sscan(msg.Metadata.Get(metadata.ReconsumeTimes), &reconsume)
			led.consumed(msg.UUID, reconsume, err == nil)
			if err == nil {
				n.sayAbout(msg.UUID, "  consumer  %s counted for note %d (reconsume times %d)", short(msg.UUID), c.NoteID, reconsume)
			} else {
				n.sayAbout(msg.UUID, "  consumer  %s FAILED at reconsume times %d: %s", short(msg.UUID), reconsume, brief(err))
			}
		},
		Scheduled: func(p redelivery.ScheduledParams) {
			n.sayAbout(p.MessageUUID, "  redeliver %s retry %d in %s (RocketMQ delay level %d, scaled x%g: %s)", short(p.MessageUUID),
				p.Retry, p.Delay, rocketmq.DelayLevelFor(p.Delay), cfg.DelayScale, ms(scaled(p.Delay)))
		},
		DeadLettered: func(p redelivery.DeadLetterParams) {
			n.sayAbout(p.MessageUUID, "  redeliver %s dead-lettered to %s after %d attempts (reason %s)", short(p.MessageUUID),
				p.DeadLetterTopic, p.Attempts, p.Reason)
		},
		DLQReceived: func(msg *message.Message) {
			led.deadLetter(msg.UUID)
			n.sayAbout(msg.UUID, "  dlq audit %s found in the dead-letter topic: reason %s, attempts %s, last error %q, from %s",
				short(msg.UUID), msg.Metadata.Get(metadata.DeadLetterReason), msg.Metadata.Get(metadata.Attempts),
				msg.Metadata.Get(metadata.LastError), msg.Metadata.Get(metadata.OriginalTopic))
		},
	}

	ns := []string{broker.NameServerAddr()}
	fmt.Fprintf(cfg.Out, "reliamq comment-service demo\n")
	fmt.Fprintf(cfg.Out, "  broker    embedded RocketMQ at %s; delay levels scaled x%g\n", broker.NameServerAddr(), cfg.DelayScale)
	fmt.Fprintf(cfg.Out, "  database  %s, table %s\n", db.Where, cfg.Table)
	fmt.Fprintf(cfg.Out, "  publish   async(10/50/200 workers, caller-runs) -> fallback(table) -> retry -> RocketMQ\n")
	fmt.Fprintf(cfg.Out, "  retry     %s: %d attempts, waits %s\n", cfg.PolicySource, cfg.SendPolicy.MaxAttempts,
		durations(cfg.SendPolicy.Schedule(cfg.SendPolicy.MaxAttempts-1)))
	fmt.Fprintf(cfg.Out, "  consume   group %s, redelivery on RocketMQ's schedule cut to %d retries: %s (scaled: %s), then the DLQ\n",
		ConsumerGroup, consumerRetries, durations(consumerPolicy.Schedule(consumerRetries)),
		durations(scaledAll(consumerPolicy.Schedule(consumerRetries), cfg.DelayScale)))

	reg, err := newRegistry()
	if err != nil {
		return Summary{}, err
	}
	m, err := metrics.New(metrics.Config{Registerer: reg, Topics: []string{TopicCommentPublished}}, cfg.Logger)
	if err != nil {
		return Summary{}, err
	}
	pub, err := NewPublishSide(PublishConfig{NameServers: ns, Store: st, SendPolicy: cfg.SendPolicy,
		RelayPollInterval: 500 * time.Millisecond, Events: ev, Metrics: m, Logger: cfg.Logger})
	if err != nil {
		return Summary{}, err
	}
	pub.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	pubClosed := false
	defer func() {
		if !pubClosed {
			_ = pub.Close()
		}
	}()
	con, err := NewConsumeSide(ctx, ConsumeConfig{NameServers: ns, Policy: consumerPolicy, Events: ev, Metrics: m, Logger: cfg.Logger})
	if err != nil {
		return Summary{}, err
	}
	conClosed := false
	defer func() {
		if !conClosed {
			_ = con.Close()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Summary{}, err
	}
	srv := &http.Server{Handler: pub, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	api := "http://" + ln.Addr().String() + "/comments"
	metricsURL := "http://" + ln.Addr().String() + "/metrics"
	fmt.Fprintf(cfg.Out, "  API       POST %s, metrics at %s\n", api, metricsURL)

	post := func(c Comment) (string, error) {
		body, _ := json.Marshal(c)
		start := time.Now()
		resp, err := http.Post(api, "application/json", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var out struct{ UUID, Error string }
		_ = json.NewDecoder(resp.Body).Decode(&out)
		took := time.Since(start)
		if resp.StatusCode != http.StatusAccepted {
			n.say("  POST      note %d -> %d in %s: %s", c.NoteID, resp.StatusCode, ms(took), out.Error)
			return "", fmt.Errorf("POST /comments: status %d: %s", resp.StatusCode, out.Error)
		}
		led.publish(out.UUID)
		n.sayPosted(out.UUID, "  POST      note %d %q -> 202 in %s, event %s", c.NoteID, c.Content, ms(took), short(out.UUID))
		return out.UUID, nil
	}
	waitFor := func(what string, timeout time.Duration, cond func() bool) error {
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	backlog := func() int64 {
		s, err := st.Stats(ctx, "")
		if err != nil {
			return -1
		}
		return s.Backlog
	}
	var (
		storyErr                   error
		maxRows                    int64
		afterOutage, afterFailures Scrape
	)
	showMetrics := func(names ...string) (Scrape, error) {
		sc, err := scrapeMetrics(metricsURL)
		if err != nil {
			return nil, err
		}
		n.say("  metrics   GET /metrics:")
		for _, l := range sc.lines(names...) {
			n.say("              %s", l)
		}
		return sc, nil
	}
	sum := func() Summary {
		s := led.summary()
		s.StoredInFallback = int(maxRows)
		s.RelaySent = int(relaySent.Load())
		s.MetricsAfterOutage, s.MetricsAfterFailures = afterOutage, afterFailures
		s.SendRetries = int(sendRetries.Load())
		if id, _ := dlqID.Load().(string); id != "" {
			s.Reconsumes = led.reconsumesOf(id)
		}
		return s
	}

	storyErr = func() error {
		n.step("1. Normal traffic: comments are published and consumed")
		var ids []string
		for _, c := range normalComments {
			id, err := post(c)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if err := waitFor("the consumer to count the first comments", 60*time.Second, func() bool { return led.settled(ids) }); err != nil {
			return err
		}
		if err := pause(); err != nil {
			return err
		}

		n.step("2. The broker goes down (embedded broker stopped: connections refused)")
		if err := broker.Stop(); err != nil {
			return err
		}
		var outageIDs []string
		for _, c := range outageComments {
			id, err := post(c)
			if err != nil {
				return err
			}
			outageIDs = append(outageIDs, id)
		}
		n.say("  (the API answered every POST at once; the async pool retries in the background)")
		want := int64(len(outageComments))
		if err := waitFor("the failed events to land in the fallback table", 60*time.Second,
			func() bool { return stored.Load() >= want }); err != nil {
			return err
		}
		maxRows = backlog()
		n.say("  table     %s holds %d rows: every event the broker refused is on disk", cfg.Table, maxRows)
		if err := pause(); err != nil {
			return err
		}
		if err := pause(); err != nil {
			return err
		}
		if b := backlog(); b > maxRows {
			maxRows = b
		}

		n.step("3. The broker comes back: the relay drains the table")
		if err := broker.Restart(); err != nil {
			return err
		}
		if err := waitFor("the relay to empty the fallback table", 60*time.Second, func() bool { return backlog() == 0 }); err != nil {
			return err
		}
		n.say("  table     %s holds 0 rows", cfg.Table)
		if err := waitFor("the consumer to count the relayed comments", 60*time.Second, func() bool { return led.settled(outageIDs) }); err != nil {
			return err
		}
		var err error
		if afterOutage, err = showMetrics("reliamq_publish_retries_total", "reliamq_fallback_writes_total",
			"reliamq_relay_sends_total", "reliamq_relay_outages_total", "reliamq_fallback_backlog"); err != nil {
			return err
		}
		if err := pause(); err != nil {
			return err
		}

		n.step("4. The consumer fails on some messages: redelivery on RocketMQ's schedule, then the DLQ")
		flaky, err := post(flakyComment)
		if err != nil {
			return err
		}
		poison, err := post(poisonComment)
		if err != nil {
			return err
		}
		dlqID.Store(poison)
		if err := waitFor("the flaky comment to succeed and the poison one to reach the DLQ", 60*time.Second,
			func() bool { return led.settled([]string{flaky}) && led.isDeadLettered(poison) }); err != nil {
			return err
		}
		if afterFailures, err = showMetrics("reliamq_redelivery_scheduled_total", "reliamq_dead_lettered_total"); err != nil {
			return err
		}
		return pause()
	}()

	// Shut down in order: the API, then the publish side (relay, then the
	// async pool), then the consumer. Messages still in flight are counted
	// by the summary as they are.
	_ = srv.Close()
	pubClosed = true
	errPub := pub.Close()
	conClosed = true
	errCon := con.Close()

	n.flush()
	s := sum()
	n.step("5. Summary by message UUID")
	fmt.Fprintf(cfg.Out, "  published      %d\n", s.Published)
	fmt.Fprintf(cfg.Out, "  delivered      %d\n", s.Delivered)
	fmt.Fprintf(cfg.Out, "  duplicated     %d\n", s.Duplicated)
	fmt.Fprintf(cfg.Out, "  dead-lettered  %d\n", s.DeadLettered)
	fmt.Fprintf(cfg.Out, "  lost           %d\n", s.Lost)
	for _, id := range s.LostUUIDs {
		fmt.Fprintf(cfg.Out, "    lost: %s\n", id)
	}
	fmt.Fprintf(cfg.Out, "  (outage: %d send retries, %d rows in the fallback table, %d resent by the relay)\n",
		s.SendRetries, s.StoredInFallback, s.RelaySent)
	if storyErr != nil {
		fmt.Fprintf(cfg.Out, "  story stopped early: %v\n", storyErr)
	}
	return s, errors.Join(storyErr, errPub, errCon)
}

// brief shortens an error for one line of narration: the innermost cause,
// and whether the adapter classified it as worth retrying.
func brief(err error) string {
	if err == nil {
		return "ok"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	if errors.Is(err, rocketmq.ErrBrokerUnavailable) {
		s = "broker unavailable: " + s
	}
	return s
}

func durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = ms(d)
	}
	return strings.Join(parts, " ")
}

func scaledAll(ds []time.Duration, f float64) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(float64(d) * f)
	}
	return out
}
