package sqlstore

import (
	"container/list"
	"context"
	"database/sql"
	"sync"
)

// stmtCacheSize bounds the prepared statements one Store keeps. The shapes a
// Store uses are few: claim, reschedule, stats, get, the id lists of delete
// and requeue rounded up to ten sizes (see idBucket), and one insert per
// batch size in use.
const stmtCacheSize = 64

// stmtCache keeps the Store's statements prepared on its *sql.DB, least
// recently used first out: SQLite, for one, spends about a third of a small
// write parsing its SQL otherwise, and the MySQL driver prepares and closes
// a server-side statement around every call. database/sql prepares each
// statement again on every pooled connection it runs on, and an evicted
// statement is closed only once the calls using it are done. The statements
// live until they are evicted or the database is closed.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	byKey map[string]*list.Element // of *cachedStmt
	lru   list.List                // front: most recently used
}

type cachedStmt struct {
	query string
	stmt  *sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, byKey: make(map[string]*list.Element)}
}

// get returns the prepared statement for query, preparing it on first use.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	if e, ok := c.byKey[query]; ok {
		c.lru.MoveToFront(e)
		st := e.Value.(*cachedStmt).stmt
		c.mu.Unlock()
		return st, nil
	}
	c.mu.Unlock()
	// Prepared outside the lock: it talks to the database. Two callers may
	// prepare the same query at once; the second keeps the first's.
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if e, ok := c.byKey[query]; ok {
		c.lru.MoveToFront(e)
		kept := e.Value.(*cachedStmt).stmt
		c.mu.Unlock()
		_ = st.Close()
		return kept, nil
	}
	c.byKey[query] = c.lru.PushFront(&cachedStmt{query: query, stmt: st})
	var evicted *sql.Stmt
	if c.lru.Len() > stmtCacheSize {
		old := c.lru.Remove(c.lru.Back()).(*cachedStmt)
		delete(c.byKey, old.query)
		evicted = old.stmt
	}
	c.mu.Unlock()
	if evicted != nil {
		// Closing waits for nothing: database/sql finalizes the statement
		// once the calls and rows using it are done.
		_ = evicted.Close()
	}
	return st, nil
}

func (c *stmtCache) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *stmtCache) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmtCache) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.get(ctx, query)
	if err != nil {
		// A Row carrying the error, as db.QueryRowContext would return.
		return c.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// ExecContext and QueryContext make the cache an execer and a querier for
// the Store's helpers: calls on the Store's database go through it, calls
// in a caller's transaction do not.
func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.exec(ctx, query, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.query(ctx, query, args...)
}

// idBucket rounds an id list's length up to one of ten sizes, so that the
// statements of delete and requeue take ten shapes, not idChunk.
func idBucket(n int) int {
	for b := 1; b < idChunk; b *= 2 {
		if n <= b {
			return b
		}
	}
	return idChunk
}

// paddedIDArgs returns ids as bind arguments, the last id repeated up to
// idBucket(len(ids)) (id IN (...) ignores repeats). ids must not be empty.
func paddedIDArgs(prefix []any, ids []int64) []any {
	n := idBucket(len(ids))
	args := make([]any, 0, len(prefix)+n)
	args = append(args, prefix...)
	for _, id := range ids {
		args = append(args, id)
	}
	for len(args) < len(prefix)+n {
		args = append(args, ids[len(ids)-1])
	}
	return args
}
