package protocol

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/casd/casd/protocol/pb"
)

// simulate runs a rate floor of cfg for offered bytes over simulated
// time, in steps of 250 ms: deliver(t) bytes arrive in the step that
// starts at t, paused(t) says the receiver is writing, and the floor is
// checked every eighth of a window as the watcher does. It returns when
// the floor tripped, or false if it did not by until.
func simulate(cfg rateConfig, offered uint64, until time.Duration,
	deliver func(t time.Duration) int64, paused func(t time.Duration) bool) (time.Duration, bool) {
	var read atomic.Int64
	t0 := time.Unix(1_800_000_000, 0)
	f := newRateFloor(cfg, offered, &read, t0)
	const step = 250 * time.Millisecond
	tick := cfg.window / 8
	was := false
	for t := time.Duration(0); t <= until; t += step {
		if p := paused(t); p != was {
			if p {
				f.pause(t0.Add(t))
			} else {
				f.resume(t0.Add(t))
			}
			was = p
		}
		read.Add(deliver(t))
		if t%tick == 0 && !f.check(t0.Add(t)) {
			return t, true
		}
	}
	return 0, false
}

func never(time.Duration) bool { return false }

// TestRateFloorDefaults checks the contract other code relies on, with
// the default rate and window: a trickling or stalled store stream trips
// the floor within 30 s of falling below the rate, and a slow honest link
// (64 KiB/s, a quarter of it, a receiver stuck writing for minutes, a tail
// shorter than a window) never does.
func TestRateFloorDefaults(t *testing.T) {
	cfg := rateConfig{}.withDefaults()
	const kib = 1 << 10
	steady := func(bps int64) func(time.Duration) int64 { return func(time.Duration) int64 { return bps / 4 } }
	cases := []struct {
		name    string
		offered uint64
		deliver func(time.Duration) int64
		paused  func(time.Duration) bool
		within  time.Duration // trips by then, counted from below; 0: never trips
		below   time.Duration // when the stream falls below the rate
	}{
		{"one 64-byte block every 29 s", 56 << 20, func(t time.Duration) int64 {
			if t%(29*time.Second) == 0 {
				return 64
			}
			return 0
		}, never, 30 * time.Second, 0},
		{"stops after a minute at 64 KiB/s", 1 << 30, func(t time.Duration) int64 {
			if t < time.Minute {
				return 16 * kib
			}
			return 0
		}, never, 30 * time.Second, time.Minute},
		{"15 KiB/s", 1 << 30, steady(15 * kib), never, 30 * time.Second, 0},
		{"64 KiB/s for an hour", 1 << 30, steady(64 * kib), never, 0, 0},
		{"a quarter of 64 KiB/s", 1 << 30, steady(16 * kib), never, 0, 0},
		{"receiver writing for 5 minutes", 1 << 30, func(t time.Duration) int64 {
			if t >= time.Minute && t < 6*time.Minute {
				return 0
			}
			return 16 * kib
		}, func(t time.Duration) bool { return t >= time.Minute && t < 6*time.Minute }, 0, 0},
		{"100 KiB offered, sent at once", 100 * kib, func(t time.Duration) int64 {
			if t == 0 {
				return 100 * kib
			}
			return 0
		}, never, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at, tripped := simulate(cfg, tc.offered, time.Hour, tc.deliver, tc.paused)
			switch {
			case tc.within == 0 && tripped:
				t.Fatalf("tripped at %s", at)
			case tc.within != 0 && !tripped:
				t.Fatal("never tripped")
			case tc.within != 0 && at-tc.below > tc.within:
				t.Fatalf("tripped %s after falling below the rate, want within %s", at-tc.below, tc.within)
			}
		})
	}
}

// TestStoreLifetime checks a store stream's end: the offer's expiry, or
// the offered bytes at the minimum rate plus three windows, whichever is
// first.
func TestStoreLifetime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cfg := rateConfig{}.withDefaults()
	cases := []struct {
		name  string
		bytes uint64
		exp   time.Duration
		want  time.Duration
	}{
		{"nothing offered", 0, time.Hour, 30 * time.Second},
		{"1 MiB", 1 << 20, time.Hour, 64*time.Second + 30*time.Second},
		{"1 MiB, expiring first", 1 << 20, time.Minute, time.Minute},
		{"1 GiB", 1 << 30, 50 * time.Minute, 50 * time.Minute},
		{"all the bytes there are", 1<<64 - 1, time.Hour, time.Hour},
	}
	for _, tc := range cases {
		o := &pb.StoreOffer{Bytes: tc.bytes, Expiry: now.Add(tc.exp).Unix()}
		if got := cfg.lifetime(o, now); !got.Equal(now.Add(tc.want)) {
			t.Errorf("%s: lifetime ends %s after acceptance, want %s", tc.name, got.Sub(now), tc.want)
		}
	}
}
