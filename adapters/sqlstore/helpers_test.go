package sqlstore_test

import (
	"testing"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
)

type backend = sqlstoretest.Backend

var backends = sqlstoretest.Backends()

// newStore opens a fresh table on the backend, dropped at the end of the test.
func newStore(t testing.TB, be backend, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	return sqlstoretest.NewStore(t, be.Dialect, cfg)
}

func forEachBackend(t *testing.T, fn func(t *testing.T, be backend)) {
	sqlstoretest.ForEach(t, backends, fn)
}
