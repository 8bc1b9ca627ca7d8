package main

import (
	"sort"
	"sync"
)

// ledger counts messages by UUID across the whole story: what the API
// accepted, what the consumer handled successfully (and how often), what
// reached the dead-letter topic.
type ledger struct {
	mu           sync.Mutex
	published    []string
	delivered    map[string]int
	deadLettered map[string]int
	reconsumes   map[string][]int // reconsume counts seen per UUID, in order
}

func newLedger() *ledger {
	return &ledger{delivered: map[string]int{}, deadLettered: map[string]int{}, reconsumes: map[string][]int{}}
}

func (l *ledger) publish(id string) {
	l.mu.Lock()
	l.published = append(l.published, id)
	l.mu.Unlock()
}

func (l *ledger) consumed(id string, reconsume int, ok bool) {
	l.mu.Lock()
	l.reconsumes[id] = append(l.reconsumes[id], reconsume)
	if ok {
		l.delivered[id]++
	}
	l.mu.Unlock()
}

func (l *ledger) deadLetter(id string) {
	l.mu.Lock()
	l.deadLettered[id]++
	l.mu.Unlock()
}

// settled reports whether every UUID in ids was delivered or dead-lettered.
func (l *ledger) settled(ids []string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		if l.delivered[id] == 0 && l.deadLettered[id] == 0 {
			return false
		}
	}
	return true
}

func (l *ledger) isDeadLettered(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadLettered[id] > 0
}

func (l *ledger) reconsumesOf(id string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.reconsumes[id]...)
}

// Summary is the story's outcome, counted by message UUID.
type Summary struct {
	// Published is the number of comments the API accepted (HTTP 202).
	Published int
	// Delivered is the number of those the consumer handled successfully at
	// least once.
	Delivered int
	// Duplicated is the number of extra successful handlings (same UUID
	// handled more than once).
	Duplicated int
	// DeadLettered is the number of published messages found in the
	// dead-letter topic (and never handled successfully).
	DeadLettered int
	// Lost is the number of published messages neither delivered nor
	// dead-lettered.
	Lost int
	// LostUUIDs lists them.
	LostUUIDs []string
	// StoredInFallback is the number of messages the fallback table held
	// during the outage.
	StoredInFallback int
	// RelaySent is the number of rows the relay resent.
	RelaySent int
	// SendRetries is the number of send retries logged during the outage.
	SendRetries int
	// Reconsumes are the reconsume counts the consumer saw for the message
	// that ended in the dead-letter topic, in order (0, 1, 2, 3).
	Reconsumes []int
	// MetricsAfterOutage and MetricsAfterFailures are the scrapes of /metrics
	// taken after step 3 (the relay drained the table) and step 4.
	MetricsAfterOutage, MetricsAfterFailures Scrape
}

func (l *ledger) summary() Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s Summary
	seen := map[string]bool{}
	for _, id := range l.published {
		if seen[id] {
			continue
		}
		seen[id] = true
		s.Published++
		switch n := l.delivered[id]; {
		case n > 0:
			s.Delivered++
			s.Duplicated += n - 1
		case l.deadLettered[id] > 0:
			s.DeadLettered++
		default:
			s.Lost++
			s.LostUUIDs = append(s.LostUUIDs, id)
		}
	}
	sort.Strings(s.LostUUIDs)
	return s
}
