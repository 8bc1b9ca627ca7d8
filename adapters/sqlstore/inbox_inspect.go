package sqlstore

import (
	"context"
	"time"
)

// InboxGroup describes the records of one handler of one consumer group.
type InboxGroup struct {
	ConsumerGroup, Handler string
	// Records counts the records, Expired those past their retention (Purge
	// deletes them).
	Records, Expired int64
	// Oldest is when the oldest record's message was processed.
	Oldest time.Time
}

// InboxRecord is one processed message.
type InboxRecord struct {
	ConsumerGroup, Handler, UUID string
	ProcessedAt, ExpiresAt       time.Time
}

// Groups summarises the table per consumer group and handler, for
// operators (reliamq inbox ls).
func (i *Inbox) Groups(ctx context.Context) ([]InboxGroup, error) {
	rows, err := i.db.QueryContext(ctx, "SELECT consumer_group, handler, COUNT(*),"+
		" COALESCE(SUM(CASE WHEN expires_at <= "+i.q.ph(1)+" THEN 1 ELSE 0 END), 0), MIN(processed_at)"+
		" FROM "+i.q.table+" GROUP BY consumer_group, handler ORDER BY consumer_group, handler",
		i.clock.Now().UnixMicro())
	if err != nil {
		return nil, i.wrap("inbox groups", err)
	}
	defer rows.Close()
	var out []InboxGroup
	for rows.Next() {
		var g InboxGroup
		var oldest int64
		if err := rows.Scan(&g.ConsumerGroup, &g.Handler, &g.Records, &g.Expired, &oldest); err != nil {
			return nil, i.wrap("inbox groups", err)
		}
		g.Oldest = time.UnixMicro(oldest).UTC()
		out = append(out, g)
	}
	return out, i.wrap("inbox groups", rows.Err())
}

// Lookup returns the records of message uuid, one per consumer group and
// handler that processed it: which handlers will skip a copy of it.
func (i *Inbox) Lookup(ctx context.Context, uuid string) ([]InboxRecord, error) {
	rows, err := i.db.QueryContext(ctx, "SELECT "+inboxColumns+" FROM "+i.q.table+
		" WHERE uuid = "+i.q.ph(1)+" ORDER BY consumer_group, handler", uuid)
	if err != nil {
		return nil, i.wrap("inbox lookup", err)
	}
	defer rows.Close()
	var out []InboxRecord
	for rows.Next() {
		var r InboxRecord
		var processed, expires int64
		if err := rows.Scan(&r.ConsumerGroup, &r.Handler, &r.UUID, &processed, &expires); err != nil {
			return nil, i.wrap("inbox lookup", err)
		}
		r.ProcessedAt, r.ExpiresAt = time.UnixMicro(processed).UTC(), time.UnixMicro(expires).UTC()
		out = append(out, r)
	}
	return out, i.wrap("inbox lookup", rows.Err())
}
