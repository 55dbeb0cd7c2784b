package config_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/casd/casd/config"
)

// A valid bootstrap address (peer ID of a fixed test key).
const testBootstrap = "/ip4/192.0.2.1/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

func defaultConfig(tb testing.TB, profile string) *config.Config {
	tb.Helper()
	c, err := config.DefaultConfig(profile)
	noErr(tb, err)
	return c
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	noErr(tb, err)
	return string(b)
}

func TestDefaultConfigProfiles(t *testing.T) {
	wideListen := []string{
		"/ip4/0.0.0.0/tcp/4001",
		"/ip6/::/tcp/4001",
		"/ip4/0.0.0.0/udp/4001/quic-v1",
		"/ip6/::/udp/4001/quic-v1",
		"/ip4/0.0.0.0/tcp/4002/ws",
	}
	tests := []struct {
		profile                                 string
		swarm                                   []string
		mdns, natPortMap, holePunching, relaySv bool
		check, audit, gossip                    time.Duration
	}{
		{"", wideListen, true, true, true, false, time.Hour, 24 * time.Hour, 30 * time.Second},
		{"default", wideListen, true, true, true, false, time.Hour, 24 * time.Hour, 30 * time.Second},
		{"server", wideListen, false, false, true, true, time.Hour, 24 * time.Hour, 30 * time.Second},
		{"local", []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0/ws"}, false, false, false, false, 3 * time.Second, 10 * time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run("profile="+tt.profile, func(t *testing.T) {
			c := defaultConfig(t, tt.profile)
			noErr(t, c.Validate())
			equal(t, tt.swarm, c.Addresses.Swarm)
			equal(t, tt.mdns, c.Discovery.MDNS)
			equal(t, tt.natPortMap, c.Swarm.NATPortMap)
			equal(t, tt.holePunching, c.Swarm.HolePunching)
			equal(t, tt.relaySv, c.Swarm.RelayService)
			isTrue(t, c.Bootstrap != nil && len(c.Bootstrap) == 0, "Bootstrap = %#v, want empty non-nil", c.Bootstrap)
			equal(t, 3, c.Replication.Factor)
			equal(t, tt.check, c.Replication.CheckInterval.Duration)
			equal(t, tt.audit, c.Replication.AuditInterval.Duration)
			equal(t, 720*time.Hour, c.Replication.Lease.Duration)
			equal(t, 1<<20, c.Chunker.Size)
			equal(t, int64(10<<30), c.Storage.Quota)
			equal(t, 10_000, c.Storage.MaxPinsPerOwner)
			equal(t, 30*time.Second, c.Storage.CollectInterval.Duration)
			equal(t, 32, c.Swarm.ConnMgr.LowWater)
			equal(t, 96, c.Swarm.ConnMgr.HighWater)
			equal(t, 20*time.Second, c.Swarm.ConnMgr.GracePeriod.Duration)
			equal(t, tt.gossip, c.Gossip.Interval.Duration)
			equal(t, 16, c.Gossip.SampleSize)
			equal(t, 3, c.Gossip.Fanout)
			equal(t, false, c.Discovery.WithoutDHT)
		})
	}
	t.Run("unknown", func(t *testing.T) {
		_, err := config.DefaultConfig("laptop")
		errContains(t, err, `"laptop"`)
		for _, p := range config.Profiles {
			errContains(t, err, p)
		}
	})
	t.Run("independent", func(t *testing.T) {
		a, b := defaultConfig(t, ""), defaultConfig(t, "")
		a.Addresses.Swarm[0] = "/ip4/1.2.3.4/tcp/1"
		equal(t, "/ip4/0.0.0.0/tcp/4001", b.Addresses.Swarm[0])
	})
}

func TestDefaultConfigJSON(t *testing.T) {
	got := mustJSON(t, defaultConfig(t, "default"))
	want := `{"Identity":{"PeerID":""},` +
		`"Addresses":{"Swarm":["/ip4/0.0.0.0/tcp/4001","/ip6/::/tcp/4001","/ip4/0.0.0.0/udp/4001/quic-v1","/ip6/::/udp/4001/quic-v1","/ip4/0.0.0.0/tcp/4002/ws"],"Announce":[]},` +
		`"Bootstrap":[],"Discovery":{"MDNS":true,"WithoutDHT":false},` +
		`"Replication":{"Factor":3,"CheckInterval":"1h","AuditInterval":"24h","Lease":"720h"},` +
		`"Chunker":{"Size":1048576},"Storage":{"Quota":10737418240,"MaxPinsPerOwner":10000,"CollectInterval":"30s"},` +
		`"Swarm":{"ConnMgr":{"LowWater":32,"HighWater":96,"GracePeriod":"20s"},"RelayService":false,"NATPortMap":true,"HolePunching":true},` +
		`"Gossip":{"Interval":"30s","SampleSize":16,"Fanout":3}}`
	equal(t, want, got)
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		d    time.Duration
		json string
	}{
		{0, `"0s"`},
		{30 * time.Second, `"30s"`},
		{10 * time.Minute, `"10m"`},
		{time.Hour, `"1h"`},
		{90 * time.Minute, `"1h30m"`},
		{time.Hour + time.Second, `"1h0m1s"`},
		{1500 * time.Millisecond, `"1.5s"`},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			b, err := json.Marshal(config.Duration{Duration: tt.d})
			noErr(t, err)
			equal(t, tt.json, string(b))
			var back config.Duration
			noErr(t, json.Unmarshal(b, &back))
			equal(t, tt.d, back.Duration)
		})
	}
	for _, bad := range []string{`30`, `"30"`, `"soon"`, `true`} {
		t.Run("bad "+bad, func(t *testing.T) {
			var d config.Duration
			isTrue(t, json.Unmarshal([]byte(bad), &d) != nil, "%s decoded as a duration", bad)
		})
	}
}

func TestGet(t *testing.T) {
	c := defaultConfig(t, "local")
	tests := []struct {
		key, want string
		err       error
	}{
		{key: "Replication.Factor", want: `3`},
		{key: "Addresses.Swarm", want: `["/ip4/127.0.0.1/tcp/0","/ip4/127.0.0.1/udp/0/quic-v1","/ip4/127.0.0.1/tcp/0/ws"]`},
		{key: "Bootstrap", want: `[]`},
		{key: "Storage.Quota", want: `10737418240`},
		{key: "Swarm.ConnMgr", want: `{"LowWater":32,"HighWater":96,"GracePeriod":"20s"}`},
		{key: "Swarm.ConnMgr.HighWater", want: `96`},
		{key: "Discovery.MDNS", want: `false`},
		{key: "Discovery.WithoutDHT", want: `false`},
		{key: "Gossip", want: `{"Interval":"2s","SampleSize":16,"Fanout":3}`},
		{key: "Gossip.Fanout", want: `3`},
		{key: "Identity.PeerID", want: `""`},
		{key: "Replication.Factr", err: config.ErrUnknownKey},
		{key: "replication.factor", err: config.ErrUnknownKey},
		{key: "", err: config.ErrUnknownKey},
		{key: "Replication.", err: config.ErrUnknownKey},
		{key: ".Replication", err: config.ErrUnknownKey},
		{key: "Replication.Factor.X", err: config.ErrUnknownKey},
		{key: "Swarm.ConnMgr.GracePeriod.Duration", err: config.ErrUnknownKey},
		// Retired keys: an old config file may hold them, but they are gone.
		{key: "Replication.RepairInterval", err: config.ErrUnknownKey},
		{key: "Addresses.API", err: config.ErrUnknownKey},
		{key: "Nope", err: config.ErrUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, err := c.Get(tt.key)
			if tt.err != nil {
				errIs(t, err, tt.err)
				errContains(t, err, tt.key)
				return
			}
			noErr(t, err)
			jsonEq(t, tt.want, string(got))
		})
	}
	t.Run("whole", func(t *testing.T) {
		got, err := c.Get("Discovery")
		noErr(t, err)
		jsonEq(t, `{"MDNS":false,"WithoutDHT":false}`, string(got))
	})
}

func TestSet(t *testing.T) {
	tests := []struct {
		name, key, value string
		want             string // JSON of Get(key) after a successful Set; "" = value
		err              error  // sentinel the error must wrap, if any
		errContains      []string
	}{
		// Good values.
		{name: "int", key: "Replication.Factor", value: "5"},
		{name: "zero factor", key: "Replication.Factor", value: "0"},
		{name: "max factor", key: "Replication.Factor", value: "20"},
		{name: "bool", key: "Discovery.MDNS", value: "false"},
		{name: "duration", key: "Swarm.ConnMgr.GracePeriod", value: `"1h"`},
		{name: "duration normalized", key: "Swarm.ConnMgr.GracePeriod", value: `"90s"`, want: `"1m30s"`},
		{name: "whitespace", key: "Chunker.Size", value: " 262144\n", want: "262144"},
		{name: "chunk max", key: "Chunker.Size", value: "4194304"},
		{name: "int64", key: "Storage.Quota", value: "1099511627776"},
		{name: "quota zero", key: "Storage.Quota", value: "0"},
		{name: "pin cap", key: "Storage.MaxPinsPerOwner", value: "3"},
		{name: "collect interval", key: "Storage.CollectInterval", value: `"1s"`},
		{name: "check interval", key: "Replication.CheckInterval", value: `"1s"`},
		{name: "audit interval", key: "Replication.AuditInterval", value: `"1m"`},
		{name: "lease", key: "Replication.Lease", value: `"10s"`},
		{name: "zero check interval is the default", key: "Replication.CheckInterval", value: `"0s"`, want: `"1h"`},
		{name: "replication without the durations", key: "Replication", value: `{"Factor":2}`, want: `{"Factor":2,"CheckInterval":"1h","AuditInterval":"24h","Lease":"720h"}`},
		{name: "swarm list", key: "Addresses.Swarm", value: `["/ip4/0.0.0.0/tcp/5001","/ip4/0.0.0.0/udp/5001/quic-v1"]`},
		{name: "empty list", key: "Addresses.Announce", value: `[]`},
		{name: "announce", key: "Addresses.Announce", value: `["/dns4/example.com/tcp/4001"]`},
		{name: "bootstrap", key: "Bootstrap", value: `["` + testBootstrap + `"]`},
		{name: "nested object", key: "Swarm.ConnMgr", value: `{"LowWater":10,"HighWater":20,"GracePeriod":"1m"}`},
		{name: "whole section", key: "Discovery", value: `{"MDNS":false}`, want: `{"MDNS":false,"WithoutDHT":false}`},
		{name: "high water 1", key: "Swarm.ConnMgr", value: `{"LowWater":0,"HighWater":1,"GracePeriod":"1s"}`},
		{name: "low water zero", key: "Swarm.ConnMgr.LowWater", value: "0"},
		{name: "low water at high water", key: "Swarm.ConnMgr.LowWater", value: "96"},
		{name: "zero grace", key: "Swarm.ConnMgr.GracePeriod", value: `"0s"`},
		{name: "without DHT", key: "Discovery.WithoutDHT", value: "true"},
		{name: "gossip interval min", key: "Gossip.Interval", value: `"1s"`},
		{name: "gossip interval zero is the default", key: "Gossip.Interval", value: `"0s"`, want: `"30s"`},
		{name: "gossip sample bounds", key: "Gossip", value: `{"Interval":"1m","SampleSize":64,"Fanout":16}`},
		{name: "gossip sample one", key: "Gossip.SampleSize", value: "1"},
		{name: "gossip fanout one", key: "Gossip.Fanout", value: "1"},
		{name: "gossip without keys is the default", key: "Gossip", value: `{}`, want: `{"Interval":"30s","SampleSize":16,"Fanout":3}`},

		// Unknown keys.
		{name: "unknown key", key: "Replication.Factr", value: "3", err: config.ErrUnknownKey, errContains: []string{"Replication.Factr"}},
		{name: "unknown top", key: "Datastore", value: "{}", err: config.ErrUnknownKey},
		{name: "below leaf", key: "Chunker.Size.Bytes", value: "1", err: config.ErrUnknownKey},
		{name: "empty key", key: "", value: "1", err: config.ErrUnknownKey},
		{name: "retired API", key: "Addresses.API", value: `"unix"`, err: config.ErrUnknownKey},
		{name: "retired RepairInterval", key: "Replication.RepairInterval", value: `"10m"`, err: config.ErrUnknownKey},
		{name: "gossip unknown field", key: "Gossip", value: `{"Peers":3}`, errContains: []string{"Gossip", "Peers"}},
		{name: "retired key in a section", key: "Replication", value: `{"Factor":3,"RepairInterval":"10m"}`, errContains: []string{"Replication", "RepairInterval"}},

		// Wrong type or not JSON.
		{name: "string for int", key: "Replication.Factor", value: `"3"`, errContains: []string{"Replication.Factor", "integer"}},
		{name: "float for int", key: "Replication.Factor", value: `3.5`, errContains: []string{"Replication.Factor", "integer"}},
		{name: "int overflow", key: "Storage.Quota", value: `1e40`, errContains: []string{"Storage.Quota", "integer"}},
		{name: "number for duration", key: "Swarm.ConnMgr.GracePeriod", value: `30`, errContains: []string{"Swarm.ConnMgr.GracePeriod", "duration"}},
		{name: "bad duration", key: "Swarm.ConnMgr.GracePeriod", value: `"soon"`, errContains: []string{"Swarm.ConnMgr.GracePeriod", "duration"}},
		{name: "string for bool", key: "Discovery.MDNS", value: `"yes"`, errContains: []string{"Discovery.MDNS", "boolean"}},
		{name: "string for list", key: "Addresses.Swarm", value: `"/ip4/0.0.0.0/tcp/1"`, errContains: []string{"Addresses.Swarm", "array of strings"}},
		{name: "not json", key: "Addresses.Swarm", value: `/ip4/0.0.0.0/tcp/1`, errContains: []string{"Addresses.Swarm", "not JSON", "an array of strings"}},
		{name: "empty value", key: "Replication.Factor", value: ``, errContains: []string{"Replication.Factor", "not JSON"}},
		{name: "trailing data", key: "Replication.Factor", value: `3 4`, errContains: []string{"Replication.Factor", "not JSON"}},
		{name: "null", key: "Replication.Factor", value: `null`, errContains: []string{"Replication.Factor", "null"}},
		{name: "null list", key: "Bootstrap", value: `null`, errContains: []string{"Bootstrap", "null"}},
		{name: "object for int", key: "Replication.Factor", value: `{}`, errContains: []string{"Replication.Factor", "integer"}},
		{name: "nested unknown field", key: "Swarm.ConnMgr", value: `{"LowWater":1,"HighWater":2,"GracePeriod":"1s","Extra":1}`, errContains: []string{"Swarm.ConnMgr", "Extra"}},
		{name: "nested wrong type", key: "Swarm.ConnMgr", value: `{"LowWater":"1"}`, errContains: []string{"Swarm.ConnMgr", "object"}},

		// Invalid values.
		{name: "bad multiaddr", key: "Addresses.Swarm", value: `["/ip4/0.0.0.0/tcp/1","foo"]`, errContains: []string{"Addresses.Swarm[1]", `"foo"`, "invalid multiaddr"}},
		{name: "empty multiaddr", key: "Addresses.Announce", value: `[""]`, errContains: []string{"Addresses.Announce[0]", "invalid multiaddr"}},
		{name: "bootstrap not multiaddr", key: "Bootstrap", value: `["foo"]`, errContains: []string{`config: Bootstrap[0]: "foo": invalid multiaddr`}},
		{name: "bootstrap without p2p", key: "Bootstrap", value: `["/ip4/192.0.2.1/tcp/4001"]`, errContains: []string{"Bootstrap[0]", "/p2p/"}},
		{name: "bootstrap only p2p", key: "Bootstrap", value: `["/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"]`, errContains: []string{"Bootstrap[0]", "no address"}},
		{name: "factor too big", key: "Replication.Factor", value: "21", errContains: []string{"Replication.Factor", "21", "0..20"}},
		{name: "factor negative", key: "Replication.Factor", value: "-1", errContains: []string{"Replication.Factor", "out of range"}},
		{name: "chunk not power of two", key: "Chunker.Size", value: "300000", errContains: []string{"Chunker.Size", "power of two"}},
		{name: "chunk too small", key: "Chunker.Size", value: "131072", errContains: []string{"Chunker.Size"}},
		{name: "chunk too big", key: "Chunker.Size", value: "8388608", errContains: []string{"Chunker.Size"}},
		{name: "quota negative", key: "Storage.Quota", value: "-1", errContains: []string{"Storage.Quota"}},
		{name: "pin cap negative", key: "Storage.MaxPinsPerOwner", value: "-1", errContains: []string{"Storage.MaxPinsPerOwner"}},
		{name: "collect interval negative", key: "Storage.CollectInterval", value: `"-1s"`, errContains: []string{"Storage.CollectInterval"}},
		{name: "check interval short", key: "Replication.CheckInterval", value: `"999ms"`, errContains: []string{"Replication.CheckInterval", "at least 1s"}},
		{name: "check interval negative", key: "Replication.CheckInterval", value: `"-1h"`, errContains: []string{"Replication.CheckInterval"}},
		{name: "audit interval negative", key: "Replication.AuditInterval", value: `"-1s"`, errContains: []string{"Replication.AuditInterval", "positive"}},
		{name: "lease short", key: "Replication.Lease", value: `"9s"`, errContains: []string{"Replication.Lease", "at least 10s"}},
		{name: "negative grace", key: "Swarm.ConnMgr.GracePeriod", value: `"-1s"`, errContains: []string{"Swarm.ConnMgr.GracePeriod"}},
		{name: "low above high", key: "Swarm.ConnMgr.LowWater", value: "97", errContains: []string{"Swarm.ConnMgr.LowWater", "HighWater"}},
		{name: "low water negative", key: "Swarm.ConnMgr.LowWater", value: "-1", errContains: []string{"Swarm.ConnMgr.LowWater", "out of range"}},
		{name: "high water zero", key: "Swarm.ConnMgr", value: `{"LowWater":0,"HighWater":0,"GracePeriod":"1s"}`, errContains: []string{"Swarm.ConnMgr.HighWater", "at least 1"}},
		{name: "nested object invalid", key: "Swarm.ConnMgr", value: `{"LowWater":10}`, errContains: []string{"Swarm.ConnMgr.HighWater"}},
		{name: "gossip interval short", key: "Gossip.Interval", value: `"999ms"`, errContains: []string{"Gossip.Interval", "at least 1s"}},
		{name: "gossip interval negative", key: "Gossip.Interval", value: `"-30s"`, errContains: []string{"Gossip.Interval", "at least 1s"}},
		{name: "gossip sample too big", key: "Gossip.SampleSize", value: "65", errContains: []string{"Gossip.SampleSize", "65", "1..64"}},
		{name: "gossip sample negative", key: "Gossip.SampleSize", value: "-1", errContains: []string{"Gossip.SampleSize", "1..64"}},
		{name: "gossip fanout too big", key: "Gossip.Fanout", value: "17", errContains: []string{"Gossip.Fanout", "17", "1..16"}},
		{name: "gossip fanout negative", key: "Gossip.Fanout", value: "-2", errContains: []string{"Gossip.Fanout", "1..16"}},
		{name: "peer id read-only", key: "Identity.PeerID", value: `"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"`, errContains: []string{"Identity.PeerID", "read-only"}},
		{name: "identity read-only", key: "Identity", value: `{"PeerID":""}`, errContains: []string{"read-only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultConfig(t, "default")
			before := mustJSON(t, c)
			got, err := c.Set(tt.key, tt.value)
			equal(t, before, mustJSON(t, c), "Set changed its receiver")
			if tt.err != nil || tt.errContains != nil {
				isTrue(t, err != nil && got == nil, "Set(%q, %q) = %v, %v; want an error", tt.key, tt.value, got, err)
				if tt.err != nil {
					errIs(t, err, tt.err)
				}
				for _, s := range tt.errContains {
					errContains(t, err, s)
				}
				isTrue(t, strings.HasPrefix(err.Error(), "config: "), "error %q lacks the package prefix", err)
				isTrue(t, !strings.Contains(err.Error(), "\n"), "error %q is not one line", err)
				return
			}
			noErr(t, err)
			noErr(t, got.Validate())
			v, err := got.Get(tt.key)
			noErr(t, err)
			want := tt.want
			if want == "" {
				want = tt.value
			}
			jsonEq(t, want, string(v))
		})
	}
}

// TestErrorQuotesBounded checks that an error names a bad value in full up
// to 80 bytes, and a longer one by its first 80 bytes and "...". (The
// parser's own message that follows still echoes all of it.)
func TestErrorQuotesBounded(t *testing.T) {
	at80 := "/" + strings.Repeat("x", 79)
	tests := []struct {
		name, value string
		quoted      string
	}{
		{"80 bytes", at80, `"` + at80 + `"`},
		{"81 bytes", at80 + "y", `"` + at80 + `..."`},
		{"long", at80 + strings.Repeat("y", 1000), `"` + at80 + `..."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := defaultConfig(t, "default").Set("Addresses.Swarm", mustJSON(t, []string{tt.value}))
			isTrue(t, err != nil && strings.HasPrefix(err.Error(), "config: Addresses.Swarm[0]: "+tt.quoted+": invalid multiaddr: "),
				"error %q does not start with the value quoted as %s", err, tt.quoted)
		})
	}
}

func TestSetChain(t *testing.T) {
	c := defaultConfig(t, "default")
	c1, err := c.Set("Replication.Factor", "7")
	noErr(t, err)
	c2, err := c1.Set("Bootstrap", `["`+testBootstrap+`"]`)
	noErr(t, err)
	equal(t, 7, c2.Replication.Factor)
	equal(t, []string{testBootstrap}, c2.Bootstrap)
	equal(t, 3, c.Replication.Factor)
	equal(t, 0, len(c1.Bootstrap))

	// The new config does not share lists with the old one.
	c3, err := c2.Set("Replication.Factor", "1")
	noErr(t, err)
	c3.Bootstrap[0] = "changed"
	equal(t, testBootstrap, c2.Bootstrap[0])
}

func TestClone(t *testing.T) {
	c := defaultConfig(t, "default")
	c.Bootstrap = []string{testBootstrap}
	c.Addresses.Announce = []string{"/ip4/192.0.2.7/tcp/4001"}
	n := c.Clone()
	equal(t, c, n)
	n.Addresses.Swarm[0] = "x"
	n.Addresses.Announce[0] = "y"
	n.Bootstrap[0] = "z"
	n.Swarm.ConnMgr.LowWater = 1
	equal(t, "/ip4/0.0.0.0/tcp/4001", c.Addresses.Swarm[0])
	equal(t, "/ip4/192.0.2.7/tcp/4001", c.Addresses.Announce[0])
	equal(t, testBootstrap, c.Bootstrap[0])
	equal(t, 32, c.Swarm.ConnMgr.LowWater)
}

func TestParse(t *testing.T) {
	good, err := json.Marshal(defaultConfig(t, "server"))
	noErr(t, err)
	c, err := config.Parse(good)
	noErr(t, err)
	equal(t, defaultConfig(t, "server"), c)

	tests := []struct {
		name, data, errContains string
	}{
		{"unknown field", strings.Replace(string(good), `"Discovery":{`, `"Discovery":{"Bonjour":true,`, 1), "Bonjour"},
		{"trailing data", string(good) + "{}", "trailing"},
		{"not json", "Replication.Factor = 3", "decode"},
		{"empty", "", "decode"},
		{"missing sections fail validation", `{"Replication":{"Factor":3}}`, "config: "},
		{"invalid value", strings.Replace(string(good), `"Factor":3`, `"Factor":99`, 1), "Replication.Factor"},
		{"bad peer id", strings.Replace(string(good), `"PeerID":""`, `"PeerID":"me"`, 1), "Identity.PeerID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.data))
			errContains(t, err, tt.errContains)
		})
	}

	t.Run("null lists normalized", func(t *testing.T) {
		data := strings.Replace(string(good), `"Bootstrap":[]`, `"Bootstrap":null`, 1)
		c, err := config.Parse([]byte(data))
		noErr(t, err)
		isTrue(t, strings.Contains(mustJSON(t, c), `"Bootstrap":[]`), "nil Bootstrap not normalized: %s", mustJSON(t, c))
	})
}

// TestParseRetiredKeys loads the config file that casd init wrote before
// Addresses.API, Replication.RepairInterval and Gossip were retired: it
// loads as the same config without the first two, its Gossip keys decode
// into Gossip (which came back), and other unknown keys are still refused.
func TestParseRetiredKeys(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "config-retired-keys.json"))
	noErr(t, err)
	want := defaultConfig(t, "default")
	want.Identity.PeerID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	c, err := config.Parse(old)
	noErr(t, err)
	equal(t, want, c)

	tests := []struct {
		name, from, to string // replace from by to in the old file
		errContains    string // "" if it must load
	}{
		{"tcp API", `"API": "unix"`, `"API": "/ip4/127.0.0.1/tcp/5001"`, ""},
		{"Gossip is read, not dropped", `"Fanout": 3`, `"Fanout": 99`, "Gossip.Fanout"},
		{"Gossip is strict again", `"Fanout": 3`, `"Fanout": 3, "Peers": [null]`, "Peers"},
		{"names match in any case", `"RepairInterval"`, `"repairinterval"`, ""},
		{"a retired name elsewhere is unknown", `"MDNS": true`, `"MDNS": true, "API": "unix"`, "API"},
		{"a near miss is unknown", `"Gossip"`, `"Gossips"`, "Gossips"},
		{"still strict about trailing data", "\n}\n", "\n} {}\n", "trailing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := strings.Replace(string(old), tt.from, tt.to, 1)
			isTrue(t, data != string(old), "%q not in the old file", tt.from)
			c, err := config.Parse([]byte(data))
			if tt.errContains != "" {
				errContains(t, err, tt.errContains)
				return
			}
			noErr(t, err)
			equal(t, want, c)
		})
	}
}

// TestParseOldGossipKeys: the values of an old file's Gossip keys are
// kept, and a key the file lacks takes its default.
func TestParseOldGossipKeys(t *testing.T) {
	old, err := os.ReadFile(filepath.Join("testdata", "config-retired-keys.json"))
	noErr(t, err)
	data := strings.NewReplacer(`"Interval": "30s"`, `"Interval": "45s"`, `"SampleSize": 16,`, ``,
		`"Fanout": 3`, `"Fanout": 5`).Replace(string(old))
	c, err := config.Parse([]byte(data))
	noErr(t, err)
	equal(t, config.Gossip{Interval: config.Duration{Duration: 45 * time.Second}, SampleSize: 16, Fanout: 5}, c.Gossip)
}

func TestValidateBootstrapSelf(t *testing.T) {
	c := defaultConfig(t, "default")
	c.Identity.PeerID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
	c.Bootstrap = []string{testBootstrap}
	errContains(t, c.Validate(), "own peer ID")
}

func TestErrorsArePrefixed(t *testing.T) {
	for _, err := range []error{config.ErrRepoExists, config.ErrNoRepo, config.ErrRepoLocked, config.ErrNewerRepo, config.ErrUnknownKey} {
		isTrue(t, strings.HasPrefix(err.Error(), "config: "), "%q lacks the package prefix", err)
	}
}

func TestKeysRedacted(t *testing.T) {
	var k config.Keys
	for i := range k.Master {
		k.Master[i] = 0xAB
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(format, k)
		isTrue(t, !strings.Contains(strings.ToLower(s), "ab") && !strings.Contains(s, "171"), "%s leaks the key: %s", format, s)
		s = fmt.Sprintf(format, struct{ K config.Keys }{k})
		isTrue(t, !strings.Contains(s, "171"), "%s of a struct leaks the key: %s", format, s)
	}
}
