package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/pkg/clock/clocktest"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func TestStore_round_trips_every_field(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clk := clocktest.NewFake(start)
		st := newStore(t, be, sqlstore.Config{Clock: clk})
		ctx := context.Background()
		in := sqlstore.Message{
			Queue:         "group/handler",
			Topic:         "orders.created",
			UUID:          "6f1c2d3e-0000-4000-8000-000000000001",
			Payload:       []byte{0, 1, 2, 0xff, 'x'},
			Metadata:      map[string]string{"tenant": "ü", "rocketmq_keys": "a b"},
			Attempts:      2,
			NextAttemptAt: start.Add(-time.Second),
			CreatedAt:     start.Add(-time.Hour),
			FirstError:    "first",
			LastError:     "last",
		}
		if err := st.Insert(ctx, in); err != nil {
			t.Fatalf("insert: %v", err)
		}
		got, err := st.List(ctx, sqlstore.Filter{Queue: "group/handler"})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(got) != 1 {
			t.Fatalf("listed %d rows, want 1", len(got))
		}
		if got[0].ID == 0 {
			t.Errorf("ID not assigned")
		}
		if diff := cmp.Diff(in, got[0], cmpopts.IgnoreFields(sqlstore.Message{}, "ID")); diff != "" {
			t.Errorf("row differs (-inserted +listed):\n%s", diff)
		}
	})
}

func TestStore_insert_defaults_times_to_now_and_keeps_microseconds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clk := clocktest.NewFake(start)
		st := newStore(t, be, sqlstore.Config{Clock: clk})
		ctx := context.Background()
		if err := st.Insert(ctx, sqlstore.Message{Topic: "t", UUID: "u"}); err != nil {
			t.Fatalf("insert: %v", err)
		}
		got, err := st.List(ctx, sqlstore.Filter{})
		if err != nil || len(got) != 1 {
			t.Fatalf("list: %v, %d rows", err, len(got))
		}
		want := start.Truncate(time.Microsecond)
		if !got[0].CreatedAt.Equal(want) || !got[0].NextAttemptAt.Equal(want) {
			t.Errorf("CreatedAt %v NextAttemptAt %v, want both %v", got[0].CreatedAt, got[0].NextAttemptAt, want)
		}
		if got[0].CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt location %v, want UTC", got[0].CreatedAt.Location())
		}
		if got[0].Payload == nil || len(got[0].Payload) != 0 || got[0].Metadata == nil {
			t.Errorf("empty payload/metadata came back as %#v / %#v, want empty non-nil", got[0].Payload, got[0].Metadata)
		}
	})
}

func TestStore_claims_only_due_unleased_rows_of_its_queue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clk := clocktest.NewFake(start)
		st := newStore(t, be, sqlstore.Config{Clock: clk, LeaseTimeout: time.Minute})
		ctx := context.Background()
		err := st.Insert(ctx,
			sqlstore.Message{Queue: "a", Topic: "t", UUID: "due-2", NextAttemptAt: start.Add(-time.Second)},
			sqlstore.Message{Queue: "a", Topic: "t", UUID: "due-1", NextAttemptAt: start.Add(-time.Minute)},
			sqlstore.Message{Queue: "a", Topic: "t", UUID: "later", NextAttemptAt: start.Add(time.Hour)},
			sqlstore.Message{Queue: "b", Topic: "t", UUID: "other-queue"},
		)
		if err != nil {
			t.Fatalf("insert: %v", err)
		}
		got, err := st.Claim(ctx, sqlstore.ClaimRequest{Queue: "a", Owner: "w1", Limit: 10})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		if diff := cmp.Diff([]string{"due-1", "due-2"}, uuids(got)); diff != "" {
			t.Errorf("claimed (-want +got):\n%s", diff)
		}
		for _, m := range got {
			if m.LeasedBy != "w1" || !m.LeasedUntil.Equal(start.Add(time.Minute).Truncate(time.Microsecond)) {
				t.Errorf("row %s lease %q until %v, want w1 until %v", m.UUID, m.LeasedBy, m.LeasedUntil, start.Add(time.Minute))
			}
		}
		again, err := st.Claim(ctx, sqlstore.ClaimRequest{Queue: "a", Owner: "w2", Limit: 10})
		if err != nil {
			t.Fatalf("second claim: %v", err)
		}
		if len(again) != 0 {
			t.Errorf("second claim got %v while leased, want none", uuids(again))
		}
	})
}

func TestStore_claim_respects_limit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newStore(t, be, sqlstore.Config{})
		ctx := context.Background()
		insertN(t, st, "", 7)
		got, err := st.Claim(ctx, sqlstore.ClaimRequest{Limit: 5})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		rest, err := st.Claim(ctx, sqlstore.ClaimRequest{Limit: 5})
		if err != nil {
			t.Fatalf("claim: %v", err)
		}
		if len(got) != 5 || len(rest) != 2 {
			t.Errorf("claims returned %d then %d rows, want 5 then 2", len(got), len(rest))
		}
	})
}

func TestStore_expired_lease_makes_row_claimable_again(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clk := clocktest.NewFake(start)
		st := newStore(t, be, sqlstore.Config{Clock: clk, LeaseTimeout: 30 * time.Second})
		ctx := context.Background()
		insertN(t, st, "", 1)
		if got, err := st.Claim(ctx, sqlstore.ClaimRequest{Owner: "crashed"}); err != nil || len(got) != 1 {
			t.Fatalf("first claim: %v, %d rows", err, len(got))
		}
		clk.Advance(29 * time.Second)
		if got, err := st.Claim(ctx, sqlstore.ClaimRequest{Owner: "w2"}); err != nil || len(got) != 0 {
			t.Fatalf("claim before lease end: %v, %d rows, want 0", err, len(got))
		}
		clk.Advance(time.Second)
		got, err := st.Claim(ctx, sqlstore.ClaimRequest{Owner: "w2"})
		if err != nil || len(got) != 1 {
			t.Fatalf("claim after lease end: %v, %d rows, want 1", err, len(got))
		}
		if got[0].LeasedBy != "w2" {
			t.Errorf("LeasedBy %q, want w2", got[0].LeasedBy)
		}
	})
}

func TestStore_reschedule_counts_attempt_records_errors_and_releases_lease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clk := clocktest.NewFake(start)
		st := newStore(t, be, sqlstore.Config{Clock: clk})
		ctx := context.Background()
		insertN(t, st, "", 1)
		got, err := st.Claim(ctx, sqlstore.ClaimRequest{})
		if err != nil || len(got) != 1 {
			t.Fatalf("claim: %v, %d rows", err, len(got))
		}
		id := got[0].ID
		next := start.Add(10 * time.Second)
		if err := st.Reschedule(ctx, id, next, "broker down"); err != nil {
			t.Fatalf("reschedule: %v", err)
		}
		if err := st.Reschedule(ctx, id, next, "still down \x00\xff"); err != nil {
			t.Fatalf("reschedule with odd bytes: %v", err)
		}
		rows, err := st.List(ctx, sqlstore.Filter{})
		if err != nil || len(rows) != 1 {
			t.Fatalf("list: %v, %d rows", err, len(rows))
		}
		r := rows[0]
		if r.Attempts != 2 || r.FirstError != "broker down" || r.LastError != "still down \uFFFD" ||
			!r.NextAttemptAt.Equal(next) || r.LeasedBy != "" || !r.LeasedUntil.IsZero() {
			t.Errorf("after two reschedules: %+v", r)
		}
		if got, _ := st.Claim(ctx, sqlstore.ClaimRequest{}); len(got) != 0 {
			t.Errorf("claimed a row before its next attempt time")
		}
		clk.Advance(10 * time.Second)
		if got, _ := st.Claim(ctx, sqlstore.ClaimRequest{}); len(got) != 1 {
			t.Errorf("row not claimable at its next attempt time")
		}
		if err := st.Reschedule(ctx, id+1000, next, "x"); !errors.Is(err, sqlstore.ErrNotFound) {
			t.Errorf("reschedule of a missing row: %v, want ErrNotFound", err)
		}
	})
}

func TestStore_requeue_releases_without_counting_an_attempt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clk := clocktest.NewFake(start)
		st := newStore(t, be, sqlstore.Config{Clock: clk})
		ctx := context.Background()
		insertN(t, st, "", 2)
		got, err := st.Claim(ctx, sqlstore.ClaimRequest{})
		if err != nil || len(got) != 2 {
			t.Fatalf("claim: %v, %d rows", err, len(got))
		}
		if err := st.Requeue(ctx, clk.Now(), got[0].ID, got[1].ID); err != nil {
			t.Fatalf("requeue: %v", err)
		}
		again, err := st.Claim(ctx, sqlstore.ClaimRequest{})
		if err != nil || len(again) != 2 {
			t.Fatalf("claim after requeue: %v, %d rows, want 2", err, len(again))
		}
		for _, m := range again {
			if m.Attempts != 0 {
				t.Errorf("row %d attempts %d, want 0", m.ID, m.Attempts)
			}
		}
		if err := st.Requeue(ctx, clk.Now(), 1<<40); !errors.Is(err, sqlstore.ErrNotFound) {
			t.Errorf("requeue of a missing row: %v, want ErrNotFound", err)
		}
	})
}

func TestStore_delete_removes_rows_and_ignores_missing_ones(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newStore(t, be, sqlstore.Config{})
		ctx := context.Background()
		insertN(t, st, "", 3)
		rows, err := st.Claim(ctx, sqlstore.ClaimRequest{Limit: 2})
		if err != nil || len(rows) != 2 {
			t.Fatalf("claim: %v, %d rows", err, len(rows))
		}
		if err := st.Delete(ctx, rows[0].ID, rows[1].ID, 1<<40); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if err := st.Delete(ctx); err != nil {
			t.Fatalf("delete of nothing: %v", err)
		}
		left, err := st.List(ctx, sqlstore.Filter{})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(left) != 1 || left[0].ID == rows[0].ID || left[0].ID == rows[1].ID {
			t.Errorf("left %v, want the one unclaimed row", left)
		}
	})
}

func TestStore_insert_of_many_rows_spans_statements(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newStore(t, be, sqlstore.Config{})
		ctx := context.Background()
		insertN(t, st, "q", 250)
		s, err := st.Stats(ctx, "q")
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		if s.Backlog != 250 {
			t.Errorf("backlog %d, want 250", s.Backlog)
		}
		// A bad row anywhere rejects the whole call before any SQL runs.
		msgs := make([]sqlstore.Message, 150)
		for i := range msgs {
			msgs[i] = sqlstore.Message{Queue: "q", Topic: "t", UUID: fmt.Sprint("b", i)}
		}
		msgs[149].Topic = "bad topic"
		if err := st.Insert(ctx, msgs...); !errors.Is(err, sqlstore.ErrInvalidTopic) {
			t.Fatalf("insert with a bad topic: %v, want ErrInvalidTopic", err)
		}
		if s, _ := st.Stats(ctx, "q"); s.Backlog != 250 {
			t.Errorf("backlog %d after a rejected insert, want 250", s.Backlog)
		}
	})
}

func TestStore_insertTx_rows_exist_only_if_the_transaction_commits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newStore(t, be, sqlstore.Config{})
		ctx := context.Background()
		for _, commit := range []bool{false, true} {
			tx, err := st.DB().BeginTx(ctx, nil)
			if err != nil {
				t.Fatalf("begin: %v", err)
			}
			if err := st.InsertTx(ctx, tx, sqlstore.Message{Topic: "t", UUID: fmt.Sprint("commit-", commit)}); err != nil {
				t.Fatalf("insertTx: %v", err)
			}
			if commit {
				err = tx.Commit()
			} else {
				err = tx.Rollback()
			}
			if err != nil {
				t.Fatalf("end tx: %v", err)
			}
		}
		rows, err := st.List(ctx, sqlstore.Filter{})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if diff := cmp.Diff([]string{"commit-true"}, uuids(rows)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
	})
}

func TestStore_deleteTx_is_undone_by_rollback(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newStore(t, be, sqlstore.Config{})
		ctx := context.Background()
		insertN(t, st, "", 1)
		rows, _ := st.List(ctx, sqlstore.Filter{})
		tx, err := st.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatalf("begin: %v", err)
		}
		if err := st.DeleteTx(ctx, tx, rows[0].ID); err != nil {
			t.Fatalf("deleteTx: %v", err)
		}
		_ = tx.Rollback()
		if left, _ := st.List(ctx, sqlstore.Filter{}); len(left) != 1 {
			t.Errorf("%d rows after rolled back delete, want 1", len(left))
		}
	})
}

func TestStore_stats_counts_backlog_due_leased_and_oldest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clk := clocktest.NewFake(start)
		st := newStore(t, be, sqlstore.Config{Clock: clk})
		ctx := context.Background()
		if s, err := st.Stats(ctx, ""); err != nil || s != (sqlstore.Stats{}) {
			t.Fatalf("empty stats: %+v, %v", s, err)
		}
		err := st.Insert(ctx,
			sqlstore.Message{Topic: "t", UUID: "1", CreatedAt: start.Add(-time.Hour)},
			sqlstore.Message{Topic: "t", UUID: "2"},
			sqlstore.Message{Topic: "t", UUID: "3", NextAttemptAt: start.Add(time.Hour)},
			sqlstore.Message{Queue: "other", Topic: "t", UUID: "4", CreatedAt: start.Add(-48 * time.Hour)},
		)
		if err != nil {
			t.Fatalf("insert: %v", err)
		}
		if _, err := st.Claim(ctx, sqlstore.ClaimRequest{Limit: 1}); err != nil {
			t.Fatalf("claim: %v", err)
		}
		got, err := st.Stats(ctx, "")
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		want := sqlstore.Stats{Backlog: 3, Due: 2, Leased: 1, Oldest: start.Add(-time.Hour).Truncate(time.Microsecond)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("stats (-want +got):\n%s", diff)
		}
	})
}

func TestStore_list_filters_and_pages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newStore(t, be, sqlstore.Config{})
		ctx := context.Background()
		err := st.Insert(ctx,
			sqlstore.Message{Queue: "a", Topic: "t1", UUID: "1"},
			sqlstore.Message{Queue: "a", Topic: "t2", UUID: "2"},
			sqlstore.Message{Queue: "b", Topic: "t1", UUID: "3"},
			sqlstore.Message{Queue: "b", Topic: "t1", UUID: "4"},
		)
		if err != nil {
			t.Fatalf("insert: %v", err)
		}
		tests := []struct {
			name   string
			filter sqlstore.Filter
			want   []string
		}{
			{"queue", sqlstore.Filter{Queue: "a"}, []string{"1", "2"}},
			{"all queues by topic", sqlstore.Filter{AllQueues: true, Topic: "t1"}, []string{"1", "3", "4"}},
			{"uuid", sqlstore.Filter{AllQueues: true, UUID: "4"}, []string{"4"}},
			{"limit", sqlstore.Filter{AllQueues: true, Limit: 2}, []string{"1", "2"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := st.List(ctx, tt.filter)
				if err != nil {
					t.Fatalf("list: %v", err)
				}
				if diff := cmp.Diff(tt.want, uuids(got)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
		first, _ := st.List(ctx, sqlstore.Filter{AllQueues: true, Limit: 2})
		next, err := st.List(ctx, sqlstore.Filter{AllQueues: true, AfterID: first[1].ID})
		if err != nil {
			t.Fatalf("list page 2: %v", err)
		}
		if diff := cmp.Diff([]string{"3", "4"}, uuids(next)); diff != "" {
			t.Errorf("page 2 (-want +got):\n%s", diff)
		}
	})
}

func TestStore_concurrent_claimers_never_share_a_leased_row(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		st := newStore(t, be, sqlstore.Config{LeaseTimeout: time.Minute})
		// Each claimer gets its own Store value (as separate processes would).
		other, err := sqlstore.New(sqlstore.Config{DB: st.DB(), Dialect: be.Dialect, Table: st.Table(), LeaseTimeout: time.Minute}, nil)
		if err != nil {
			t.Fatalf("second store: %v", err)
		}
		ctx := context.Background()
		const n = 1000
		insertN(t, st, "", n)
		var (
			mu    sync.Mutex
			seen  = map[int64]string{}
			dupes []int64
			errs  []error
			wg    sync.WaitGroup
		)
		for w := 0; w < 4; w++ {
			s := st
			if w%2 == 1 {
				s = other
			}
			owner := fmt.Sprint("w", w)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					rows, err := s.Claim(ctx, sqlstore.ClaimRequest{Owner: owner, Limit: 25})
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					if len(rows) == 0 {
						return
					}
					ids := make([]int64, len(rows))
					mu.Lock()
					for i, r := range rows {
						ids[i] = r.ID
						if _, ok := seen[r.ID]; ok {
							dupes = append(dupes, r.ID)
						}
						seen[r.ID] = owner
					}
					mu.Unlock()
					// Half the batches are deleted, half stay leased: both
					// must stay invisible to the other claimers.
					if len(ids)%2 == 0 {
						if err := s.Delete(ctx, ids...); err != nil {
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("claim errors: %v", errors.Join(errs...))
		}
		if len(dupes) > 0 {
			t.Errorf("%d rows claimed twice while leased: %v", len(dupes), dupes[:min(10, len(dupes))])
		}
		if len(seen) != n {
			t.Errorf("claimed %d distinct rows, want %d", len(seen), n)
		}
	})
}

func TestStore_database_failures_match_ErrStoreUnavailable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := sqlstoretest.Open(t, be.Dialect)
		st := newStore(t, be, sqlstore.Config{DB: db})
		_ = db.Close()
		ctx := context.Background()
		err := st.Insert(ctx, sqlstore.Message{Topic: "t", UUID: "u"})
		if !errors.Is(err, sqlstore.ErrStoreUnavailable) || !sqlstore.IsRetryable(err) {
			t.Errorf("insert on a closed database: %v, want ErrStoreUnavailable", err)
		}
		var se *sqlstore.StoreError
		if !errors.As(err, &se) || se.Op != "insert" {
			t.Errorf("insert error %v is not a StoreError for op insert", err)
		}
		if _, err := st.Claim(ctx, sqlstore.ClaimRequest{}); !errors.Is(err, sqlstore.ErrStoreUnavailable) {
			t.Errorf("claim on a closed database: %v, want ErrStoreUnavailable", err)
		}
	})
}

func TestStore_wrong_DSN_fails_with_ErrStoreUnavailable(t *testing.T) {
	db, err := sql.Open("pgx", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer db.Close()
	_, err = sqlstore.New(sqlstore.Config{DB: db, Dialect: sqlstore.Postgres, AutoInitialize: true}, nil)
	if !errors.Is(err, sqlstore.ErrStoreUnavailable) {
		t.Errorf("New with AutoInitialize on an unreachable server: %v, want ErrStoreUnavailable", err)
	}
}

func insertN(t testing.TB, st *sqlstore.Store, queue string, n int) {
	t.Helper()
	msgs := make([]sqlstore.Message, n)
	for i := range msgs {
		msgs[i] = sqlstore.Message{Queue: queue, Topic: "topic", UUID: fmt.Sprintf("m-%05d", i), Payload: []byte("p")}
	}
	if err := st.Insert(context.Background(), msgs...); err != nil {
		t.Fatalf("insert %d: %v", n, err)
	}
}

func uuids(ms []sqlstore.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.UUID
	}
	sort.Strings(out)
	return out
}
