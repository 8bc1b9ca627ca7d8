package rocketmq

import (
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// decodeMsgID splits a message id into its fields, the way the Java client's
// MessageClientIDSetter reads them.
func decodeMsgID(t *testing.T, id string) (hostPID string, instance, sinceMonth uint32, counter uint16) {
	t.Helper()
	if len(id) != msgIDLen {
		t.Fatalf("id %q has %d characters, want %d", id, len(id), msgIDLen)
	}
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F') {
			t.Fatalf("id %q has %q, want upper-case hex only", id, c)
		}
	}
	raw, err := hex.DecodeString(id)
	if err != nil {
		t.Fatal(err)
	}
	return id[:12], binary.BigEndian.Uint32(raw[6:10]), binary.BigEndian.Uint32(raw[10:14]), binary.BigEndian.Uint16(raw[14:16])
}

func TestMsgIDs_layout_is_host_process_instance_time_and_counter(t *testing.T) {
	g := newMsgIDs("0A0000070457", 0xC0FFEE01)
	now := time.Date(2026, time.November, 21, 9, 30, 15, 250_000_000, time.Local)
	first := g.next(now)
	host, instance, since, counter := decodeMsgID(t, first)
	if host != "0A0000070457" || instance != 0xC0FFEE01 {
		t.Errorf("id %s: host and process %s, instance %08X; want 0A0000070457 and C0FFEE01", first, host, instance)
	}
	monthStart := time.Date(2026, time.November, 1, 0, 0, 0, 0, time.Local)
	if want := uint32(now.Sub(monthStart).Milliseconds()); since != want {
		t.Errorf("id %s: %d ms since the month began, want %d", first, since, want)
	}
	second := g.next(now.Add(time.Millisecond))
	_, _, since2, counter2 := decodeMsgID(t, second)
	if since2 != since+1 || counter2 != counter+1 {
		t.Errorf("next id %s: time %d counter %d, want %d and %d", second, since2, counter2, since+1, counter+1)
	}
}

func TestMsgIDs_time_restarts_with_each_month_and_follows_a_clock_set_back(t *testing.T) {
	g := newMsgIDs("0A0000070457", 1)
	lastOfNov := time.Date(2026, time.November, 30, 23, 59, 59, 999_000_000, time.Local)
	firstOfDec := lastOfNov.Add(time.Millisecond)
	november := uint32(lastOfNov.Sub(time.Date(2026, time.November, 1, 0, 0, 0, 0, time.Local)).Milliseconds())
	cases := []struct {
		at   time.Time
		want uint32
	}{
		{lastOfNov, november},
		{firstOfDec, 0},
		{firstOfDec.Add(1500 * time.Millisecond), 1500},
		{lastOfNov, november}, // the clock went back into November
	}
	for _, c := range cases {
		id := g.next(c.at)
		if _, _, since, _ := decodeMsgID(t, id); since != c.want {
			t.Errorf("id at %s = %s: %d ms since the month began, want %d", c.at, id, since, c.want)
		}
	}
}

// The v2.1.2 client's ids count whole seconds, so they repeat after 65,536
// ids in one second; these repeat only after 65,536 in one millisecond.
func TestMsgIDs_are_distinct_for_a_full_counter_in_one_millisecond(t *testing.T) {
	g := newMsgIDs("0A0000070457", 1)
	now := time.Date(2026, time.November, 21, 9, 30, 15, 0, time.Local)
	seen := make(map[string]bool, 1<<16)
	for i := 0; i < 1<<16; i++ {
		id := g.next(now)
		if seen[id] {
			t.Fatalf("id %s repeated after %d ids", id, i)
		}
		seen[id] = true
	}
	if later := g.next(now.Add(time.Millisecond)); seen[later] {
		t.Errorf("id %s of the next millisecond repeats one of the previous", later)
	}
}

func TestMsgIDs_share_the_clients_host_and_process_but_not_its_instance(t *testing.T) {
	client := primitive.CreateUniqID()
	ours := messageIDs.next(time.Now())
	host, instance, _, _ := decodeMsgID(t, ours)
	if host != client[:12] {
		t.Errorf("host and process %s, the client's ids have %s", host, client[:12])
	}
	if instance == 0 || ours[12:20] == client[12:20] {
		t.Errorf("instance %08X equals the client's %s: ids could collide with the client's own", instance, client[12:20])
	}
}
