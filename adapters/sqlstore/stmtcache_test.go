package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reliamq/reliamq/adapters/sqlstore"
)

// The Store keeps its statements prepared (a bounded cache, and id lists
// rounded up to a few lengths): every batch size, more shapes than the cache
// holds, used from several goroutines at once, must still write, claim,
// requeue and delete exactly the rows asked for.
func TestStore_statements_of_every_shape_stay_exact_under_concurrent_use(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newStore(t, be, sqlstore.Config{})
		ctx := context.Background()
		const workers, maxBatch = 2, 70 // 70 insert shapes each: more than the cache keeps
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- exerciseShapes(ctx, st, fmt.Sprintf("q%d", w), maxBatch)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

func exerciseShapes(ctx context.Context, st *sqlstore.Store, queue string, maxBatch int) error {
	want := 0
	for n := 1; n <= maxBatch; n++ {
		msgs := make([]sqlstore.Message, n)
		for i := range msgs {
			msgs[i] = sqlstore.Message{Queue: queue, Topic: "t", UUID: fmt.Sprintf("%s-%d-%d", queue, n, i)}
		}
		if err := st.Insert(ctx, msgs...); err != nil {
			return fmt.Errorf("%s: insert %d: %w", queue, n, err)
		}
		want += n
	}
	if s, err := st.Stats(ctx, queue); err != nil || s.Backlog != int64(want) {
		return fmt.Errorf("%s: backlog %d, %v; want %d", queue, s.Backlog, err, want)
	}
	seen := map[string]bool{}
	empty := 0
	for limit := 1; len(seen) < want; limit = limit%97 + 1 {
		rows, err := st.Claim(ctx, sqlstore.ClaimRequest{Queue: queue, Limit: limit})
		if err != nil {
			return fmt.Errorf("%s: claim %d: %w", queue, limit, err)
		}
		if len(rows) > limit {
			return fmt.Errorf("%s: claim %d gave %d rows", queue, limit, len(rows))
		}
		if len(rows) == 0 {
			// SKIP LOCKED on MySQL may pass over rows whose index entries
			// the other worker's claim holds for a moment: try again, but
			// not for ever.
			if empty++; empty > 100 {
				return fmt.Errorf("%s: claim %d gave no row 100 times with %d of %d left", queue, limit, want-len(seen), want)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		empty = 0
		ids := make([]int64, len(rows))
		for i, r := range rows {
			if seen[r.UUID] {
				return fmt.Errorf("%s: row %s claimed twice", queue, r.UUID)
			}
			ids[i] = r.ID
		}
		// Every third batch is released first and claimed again; its
		// requeue counts rows, not the ids a padded list repeats.
		if limit%3 == 0 {
			if err := st.Requeue(ctx, rows[0].NextAttemptAt, ids...); err != nil {
				return fmt.Errorf("%s: requeue %d: %w", queue, len(ids), err)
			}
			continue
		}
		for _, r := range rows {
			seen[r.UUID] = true
		}
		if err := st.Delete(ctx, ids...); err != nil {
			return fmt.Errorf("%s: delete %d: %w", queue, len(ids), err)
		}
		if err := st.Requeue(ctx, rows[0].NextAttemptAt, ids...); !errors.Is(err, sqlstore.ErrNotFound) {
			return fmt.Errorf("%s: requeue of %d deleted rows: %v, want ErrNotFound", queue, len(ids), err)
		}
		if s, err := st.Stats(ctx, queue); err != nil || s.Backlog != int64(want-len(seen)) {
			return fmt.Errorf("%s: backlog %d, %v after deleting %d; want %d", queue, s.Backlog, err, len(ids), want-len(seen))
		}
	}
	return nil
}
