package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/pkg/metadata"
)

// pageSize is how many rows one List query reads.
const pageSize = 500

// selection reads the rows a command works on.
type selection struct {
	o     options
	store *sqlstore.Store
	env   env
}

// topicOf is the topic a row is shown and filtered under: for dead letters
// the topic the message was consumed from, for fallback rows the topic it is
// to be sent to.
func (s selection) topicOf(m sqlstore.Message) string {
	if s.o.area == "dlq" {
		if t := m.Metadata[metadata.OriginalTopic]; t != "" {
			return t
		}
	}
	return m.Topic
}

func (s selection) matches(m sqlstore.Message) bool {
	o := s.o
	if o.topic != "" && s.topicOf(m) != o.topic {
		return false
	}
	if o.group != "" && m.Metadata[metadata.ConsumerGroup] != o.group {
		return false
	}
	if o.olderThan > 0 && s.env.clock.Now().Sub(m.CreatedAt) < o.olderThan {
		return false
	}
	if o.errorContains != "" && !strings.Contains(m.LastError, o.errorContains) &&
		!strings.Contains(m.FirstError, o.errorContains) &&
		!strings.Contains(m.Metadata[metadata.LastError], o.errorContains) {
		return false
	}
	return true
}

// rows returns the matching rows in id order, at most --limit of them, and
// whether more would have matched.
func (s selection) rows(ctx context.Context) ([]sqlstore.Message, bool, error) {
	if len(s.o.ids) > 0 {
		return s.byID(ctx)
	}
	var out []sqlstore.Message
	// The database filters what its columns hold; matches re-checks every
	// row and adds what only metadata holds (dead letters' original topic,
	// group and error text).
	f := sqlstore.Filter{Queue: s.o.queue, Limit: pageSize, OlderThan: s.o.olderThan}
	if s.o.area == "fallback" {
		f.Topic = s.o.topic
		f.ErrorContains = s.o.errorContains
	}
	for {
		page, err := s.store.List(ctx, f)
		if err != nil {
			return nil, false, fmt.Errorf("listing %s: %w", s.store.Table(), err)
		}
		for _, m := range page {
			if !s.matches(m) {
				continue
			}
			if s.o.limit > 0 && len(out) == s.o.limit {
				return out, true, nil
			}
			out = append(out, m)
		}
		if len(page) < pageSize {
			break
		}
		f.AfterID = page[len(page)-1].ID
	}
	if len(out) == 0 && (s.o.topic != "" || s.o.group != "") {
		if err := s.checkNames(ctx); err != nil {
			return nil, false, err
		}
	}
	return out, false, nil
}

// byID fetches the rows named on the command line; each must exist in the
// queue and pass the filters.
func (s selection) byID(ctx context.Context) ([]sqlstore.Message, bool, error) {
	ids := append([]int64(nil), s.o.ids...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var out []sqlstore.Message
	for i, id := range ids {
		if i > 0 && ids[i-1] == id {
			continue
		}
		m, err := s.store.Get(ctx, id)
		if errors.Is(err, sqlstore.ErrNotFound) || err == nil && m.Queue != s.o.queue {
			return nil, false, notFoundError("no row %d in table %s queue %q", id, s.store.Table(), s.o.queue)
		}
		if err != nil {
			return nil, false, fmt.Errorf("reading row %d: %w", id, err)
		}
		if !s.matches(m) {
			return nil, false, notFoundError("row %d does not match the filters", id)
		}
		out = append(out, m)
	}
	return out, false, nil
}

// checkNames tells an unknown topic or consumer group (a typo, most likely)
// from known ones whose rows the other filters excluded: a --topic or
// --consumer-group that no row of the queue has is "not found" (exit 3).
func (s selection) checkNames(ctx context.Context) error {
	topics, groups := map[string]bool{}, map[string]bool{}
	f := sqlstore.Filter{Queue: s.o.queue, Limit: pageSize}
	for {
		page, err := s.store.List(ctx, f)
		if err != nil {
			return fmt.Errorf("listing %s: %w", s.store.Table(), err)
		}
		for _, m := range page {
			topics[s.topicOf(m)] = true
			if g := m.Metadata[metadata.ConsumerGroup]; g != "" {
				groups[g] = true
			}
		}
		if len(page) < pageSize {
			break
		}
		f.AfterID = page[len(page)-1].ID
	}
	if s.o.topic != "" && !topics[s.o.topic] {
		return notFoundError("unknown topic %q in table %s queue %q (topics present: %s)", s.o.topic, s.store.Table(), s.o.queue, present(topics))
	}
	if s.o.group != "" && !groups[s.o.group] {
		return notFoundError("unknown consumer group %q in table %s queue %q (groups present: %s)", s.o.group, s.store.Table(), s.o.queue, present(groups))
	}
	return nil
}

// present lists names sorted, at most 20, or says the queue is empty.
func present(names map[string]bool) string {
	known := make([]string, 0, len(names))
	for n := range names {
		known = append(known, n)
	}
	sort.Strings(known)
	if len(known) > 20 {
		known = append(known[:20], "...")
	}
	if len(known) == 0 {
		return "none"
	}
	return strings.Join(known, ", ")
}
