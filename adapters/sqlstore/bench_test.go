package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
)

// BenchmarkStore_insert measures store writes per dialect: one message per
// Insert (each its own transaction, as the fallback publisher writes) and 100
// messages per Insert. ns/op and msgs/s are per message.
func BenchmarkStore_insert(b *testing.B) {
	payload := make([]byte, 512)
	for _, be := range backends {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.Name, batch), func(b *testing.B) {
				db := sqlstoretest.Open(b, be.Dialect)
				db.SetMaxIdleConns(8)
				st := newStore(b, be, sqlstore.Config{DB: db})
				msgs := make([]sqlstore.Message, batch)
				for i := range msgs {
					msgs[i] = sqlstore.Message{Topic: "bench", UUID: fmt.Sprint("u", i), Payload: payload,
						Metadata: map[string]string{"k": "v"}, FirstError: "broker down"}
				}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for written := 0; written < b.N; written += batch {
					if err := st.Insert(ctx, msgs[:min(batch, b.N-written)]...); err != nil {
						b.Fatalf("insert: %v", err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

// BenchmarkStore_claim_and_delete measures the relay's store round trip per
// message: claim 100 due rows, then delete them with one statement.
func BenchmarkStore_claim_and_delete(b *testing.B) {
	for _, be := range backends {
		b.Run(be.Name, func(b *testing.B) {
			st := newStore(b, be, sqlstore.Config{})
			insertN(b, st, "", b.N)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				rows, err := st.Claim(ctx, sqlstore.ClaimRequest{Limit: 100})
				if err != nil || len(rows) == 0 {
					b.Fatalf("claim: %v, %d rows", err, len(rows))
				}
				ids := make([]int64, len(rows))
				for i, r := range rows {
					ids[i] = r.ID
				}
				if err := st.Delete(ctx, ids...); err != nil {
					b.Fatalf("delete: %v", err)
				}
				done += len(rows)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
