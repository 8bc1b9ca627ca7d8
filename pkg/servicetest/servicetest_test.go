package servicetest

import "testing"

func TestDialTargets_are_derived_from_each_address_form(t *testing.T) {
	cases := []struct {
		name string
		s    Service
		addr string
		want string
	}{
		{"postgres url", Postgres, "postgres://root@db.local:6543/test?sslmode=disable", "db.local:6543"},
		{"postgres url without port", Postgres, "postgres://root@db.local/test", "db.local:5432"},
		{"mysql dsn", MySQL, "root:pw@tcp(10.0.0.2:3307)/test", "10.0.0.2:3307"},
		{"amqp url", AMQP, "amqp://guest:guest@127.0.0.1:5673/", "127.0.0.1:5673"},
		{"nats url", NATS, "nats://127.0.0.1:4222", "127.0.0.1:4222"},
		{"redis addr", Redis, "127.0.0.1:6380", "127.0.0.1:6380"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.s.dialTarget(c.addr); got != c.want {
				t.Fatalf("dialTarget(%q) = %q, want %q", c.addr, got, c.want)
			}
		})
	}
}
