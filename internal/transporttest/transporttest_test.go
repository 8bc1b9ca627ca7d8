package transporttest_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	amqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	nc "github.com/nats-io/nats.go"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/reliamq/reliamq/adapters/sqlstore"
	"github.com/reliamq/reliamq/adapters/sqlstore/sqlstoretest"
	"github.com/reliamq/reliamq/internal/transporttest"
	"github.com/reliamq/reliamq/pkg/servicetest"
)

// leftOver reports whether the server still has an object of topic (or of
// group on topic) after the test that used it ended; nil for transports
// that keep nothing on a server.
func leftOver(t *testing.T, tr transporttest.Transport) func(topic, group string) bool {
	switch tr.Name {
	case "postgres", "mariadb":
		return func(topic, _ string) bool { return tableExists(t, tr.DB, "watermill_"+topic) }
	case "rabbitmq":
		uri := servicetest.AMQP.Addr(t)
		return func(topic, group string) bool {
			conn, err := amqp091.Dial(uri)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			// A passive declare of a missing queue fails (and closes the channel).
			_, err = ch.QueueDeclarePassive(amqp.GenerateQueueNameTopicNameWithSuffix(group)(topic), true, false, false, false, nil)
			return err == nil
		}
	case "nats-jetstream":
		url := servicetest.NATS.Addr(t)
		return func(topic, _ string) bool {
			conn, err := nc.Connect(url)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			js, err := conn.JetStream()
			if err != nil {
				t.Fatal(err)
			}
			_, err = js.StreamInfo(topic)
			if err != nil && !errors.Is(err, nc.ErrStreamNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
	case "redis-streams":
		client := redis.NewClient(&redis.Options{Addr: servicetest.Redis.Addr(t)})
		t.Cleanup(func() { _ = client.Close() })
		return func(topic, _ string) bool {
			n, err := client.Exists(context.Background(), topic).Result()
			if err != nil {
				t.Fatal(err)
			}
			return n > 0
		}
	}
	return nil
}

func tableExists(t *testing.T, db *sql.DB, table string) bool {
	t.Helper()
	var n int
	err := db.QueryRow("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '" + table + "'").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// Each transport delivers a message to every consumer group subscribed to
// its topic, and removes the topic's server-side objects when the test that
// used it ends.
func TestTransports_deliver_to_every_group_and_remove_their_objects_after_the_test(t *testing.T) {
	transporttest.ForEach(t, transporttest.Watermill(), func(t *testing.T, tr transporttest.Transport) {
		gone := leftOver(t, tr)
		topic := sqlstoretest.UniqueName("tt")
		groups := []string{sqlstoretest.UniqueName("a"), sqlstoretest.UniqueName("b")}
		t.Run("round_trip", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var chans []<-chan *message.Message
			var pub message.Publisher
			for _, g := range groups {
				p, sub := tr.NewPubSub(t, g)
				pub = p
				ch, err := sub.Subscribe(ctx, topic)
				if err != nil {
					t.Fatal(err)
				}
				chans = append(chans, ch)
			}
			id := watermill.NewUUID()
			// gochannel's Publish returns once the subscribers acknowledged.
			published := make(chan error, 1)
			go func() { published <- pub.Publish(topic, message.NewMessage(id, []byte(`{"k":1}`))) }()
			// Each group consumes on its own: watermill-sql's MySQL groups
			// wait for each other's acknowledgements (offset table locks).
			received := make(chan string, len(chans))
			for _, ch := range chans {
				go func() {
					select {
					case msg, ok := <-ch:
						if ok {
							msg.Ack()
							received <- msg.UUID
							return
						}
					case <-ctx.Done():
					}
					received <- ""
				}()
			}
			for i := range chans {
				if got := <-received; got != id {
					t.Errorf("group %d of %d received %q; want %s", i+1, len(chans), got, id)
				}
			}
			if err := <-published; err != nil {
				t.Fatal(err)
			}
			if gone != nil && !gone(topic, groups[0]) {
				t.Fatal("no server-side object of the topic during the test: the check below proves nothing")
			}
		})
		if gone != nil && gone(topic, groups[0]) {
			t.Errorf("the server keeps %s's objects after the test", topic)
		}
	})
}

func TestSQL_keeps_its_database_and_dialect(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL} {
		t.Run(string(d), func(t *testing.T) {
			tr := transporttest.SQL(t, d)
			if tr.DB == nil || tr.Dialect != d || tr.SerialPublish != (d == sqlstore.MySQL) {
				t.Fatalf("SQL(%s): DB %v, Dialect %q, SerialPublish %v", d, tr.DB, tr.Dialect, tr.SerialPublish)
			}
			if err := tr.DB.Ping(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type countingSubscriber struct {
	message.Subscriber
	closes int
}

func (c *countingSubscriber) Close() error {
	c.closes++
	return errors.New("closed")
}

func TestClosed_closes_once_and_at_the_end_of_the_test(t *testing.T) {
	inner := &countingSubscriber{}
	t.Run("test", func(t *testing.T) {
		sub := transporttest.Closed(t, inner)
		err1, err2 := sub.Close(), sub.Close()
		if inner.closes != 1 || err1 == nil || err2 == nil || err1.Error() != err2.Error() {
			t.Fatalf("closes %d, errors %v, %v; want 1 close, its error twice", inner.closes, err1, err2)
		}
	})
	if inner.closes != 1 {
		t.Fatalf("closes %d after the test; want 1", inner.closes)
	}
	untouched := &countingSubscriber{}
	t.Run("not_closed_by_the_test", func(t *testing.T) { transporttest.Closed(t, untouched) })
	if untouched.closes != 1 {
		t.Fatalf("closes %d after the test; want 1 (at its end)", untouched.closes)
	}
}
