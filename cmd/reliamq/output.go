package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// rowJSON is the --json form of a row. Field names are part of the
// command's interface (docs/operations-cli.md).
type rowJSON struct {
	ID            int64     `json:"id"`
	Queue         string    `json:"queue"`
	Topic         string    `json:"topic"`
	UUID          string    `json:"uuid"`
	Attempts      int       `json:"attempts"`
	CreatedAt     time.Time `json:"created_at"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	AgeSeconds    float64   `json:"age_seconds"`
	// Always present (empty when there is none), untruncated.
	FirstError string `json:"first_error"`
	LastError  string `json:"last_error"`

	// Dead-letter fields, from the message metadata.
	StoredTopic   string `json:"stored_topic,omitempty"`
	ConsumerGroup string `json:"consumer_group,omitempty"`
	Handler       string `json:"handler,omitempty"`
	Reason        string `json:"reason,omitempty"`

	// show only.
	Metadata        map[string]string `json:"metadata,omitempty"`
	Payload         *string           `json:"payload,omitempty"`
	PayloadEncoding string            `json:"payload_encoding,omitempty"`
}

func (c *command) toJSON(m sqlstore.Message, full bool) rowJSON {
	r := rowJSON{ID: m.ID, Queue: m.Queue, Topic: c.sel.topicOf(m), UUID: m.UUID, Attempts: m.Attempts,
		CreatedAt: m.CreatedAt.UTC(), NextAttemptAt: m.NextAttemptAt.UTC(),
		AgeSeconds: c.env.clock.Now().Sub(m.CreatedAt).Seconds(),
		FirstError: m.FirstError, LastError: m.LastError,
		ConsumerGroup: m.Metadata[metadata.ConsumerGroup], Handler: m.Metadata[metadata.Handler],
		Reason: m.Metadata[metadata.DeadLetterReason]}
	if r.Topic != m.Topic {
		r.StoredTopic = m.Topic
	}
	if c.o.area == "dlq" {
		if r.LastError == "" {
			r.LastError = m.Metadata[metadata.LastError]
		}
		// For a dead letter the interesting count is how often the handler
		// ran, not the store's send attempts.
		if n, err := strconv.Atoi(m.Metadata[metadata.Attempts]); err == nil {
			r.Attempts = n
		}
	}
	if full {
		r.Metadata = m.Metadata
		p, enc := payloadText(m.Payload)
		r.Payload, r.PayloadEncoding = &p, enc
	}
	return r
}

// payloadText returns the payload as text when it is UTF-8, base64 otherwise.
func payloadText(b []byte) (string, string) {
	if utf8.Valid(b) {
		return string(b), "utf-8"
	}
	return base64.StdEncoding.EncodeToString(b), "base64"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeTable prints rows as an aligned table.
func (c *command) writeTable(w io.Writer, rows []sqlstore.Message) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if c.o.area == "dlq" {
		fmt.Fprintln(tw, "ID\tTOPIC\tUUID\tGROUP\tHANDLER\tREASON\tATTEMPTS\tAGE\tLAST ERROR")
	} else {
		fmt.Fprintln(tw, "ID\tTOPIC\tUUID\tATTEMPTS\tAGE\tNEXT ATTEMPT\tLAST ERROR")
	}
	for _, m := range rows {
		r := c.toJSON(m, false)
		lastErr := r.LastError
		if lastErr == "" {
			lastErr = r.FirstError
		}
		age := humanDuration(c.env.clock.Now().Sub(m.CreatedAt))
		if c.o.area == "dlq" {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, r.Topic, m.UUID, dash(r.ConsumerGroup),
				dash(r.Handler), dash(r.Reason), r.Attempts, age, cause(lastErr, 60))
			continue
		}
		next := "due"
		if d := m.NextAttemptAt.Sub(c.env.clock.Now()); d > 0 {
			next = "in " + humanDuration(d)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", m.ID, r.Topic, m.UUID, m.Attempts, age, next, cause(lastErr, 60))
	}
	return tw.Flush()
}

// writeFull prints rows one field per line, payload and metadata included.
func (c *command) writeFull(w io.Writer, rows []sqlstore.Message) error {
	for i, m := range rows {
		if i > 0 {
			fmt.Fprintln(w)
		}
		r := c.toJSON(m, true)
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		field := func(k, v string) {
			if v != "" {
				fmt.Fprintf(tw, "%s:\t%s\n", k, v)
			}
		}
		field("ID", strconv.FormatInt(m.ID, 10))
		field("Queue", strconv.Quote(m.Queue))
		field("Topic", r.Topic)
		field("Stored topic", r.StoredTopic)
		field("UUID", m.UUID)
		field("Consumer group", r.ConsumerGroup)
		field("Handler", r.Handler)
		field("Reason", r.Reason)
		field("Attempts", strconv.Itoa(r.Attempts))
		field("Created", m.CreatedAt.UTC().Format(time.RFC3339)+" ("+humanDuration(c.env.clock.Now().Sub(m.CreatedAt))+" ago)")
		field("Next attempt", m.NextAttemptAt.UTC().Format(time.RFC3339))
		field("First error", oneLine(m.FirstError, 0))
		field("Last error", oneLine(r.LastError, 0))
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(m.Metadata) > 0 {
			fmt.Fprintln(w, "Metadata:")
			keys := make([]string, 0, len(m.Metadata))
			for k := range m.Metadata {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "  %s = %s\n", k, oneLine(m.Metadata[k], 0))
			}
		}
		fmt.Fprintf(w, "Payload (%d bytes, %s):\n%s\n", len(m.Payload), r.PayloadEncoding, *r.Payload)
	}
	return nil
}

// rowsWord is "1 row" or "n rows".
func rowsWord(n int) string {
	if n == 1 {
		return "1 row"
	}
	return strconv.Itoa(n) + " rows"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine flattens s to one line and cuts it to max runes (0: no cut).
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if max > 0 && utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max-1]) + "…"
	}
	return s
}

// cause flattens an error text to one line and, when it is longer than max
// runes, keeps its end: wrapped errors read "outer: inner: root cause", so
// the end is the root cause and the start only the wrappers. show and JSON
// print the whole text.
func cause(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		s = "…" + string(r[len(r)-(max-1):])
	}
	return s
}

// humanDuration prints d with at most two units: 45s, 3m12s, 2h5m, 3d4h.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}
