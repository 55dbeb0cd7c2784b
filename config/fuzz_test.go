package config_test

import (
	"encoding/json"
	"testing"

	"github.com/casd/casd/config"
)

// FuzzSet guards Set's contract on arbitrary keys and values: it never
// panics (reflection walks user-chosen paths), never changes its receiver,
// and whatever it accepts validates and survives the config file round trip.
func FuzzSet(f *testing.F) {
	seeds := [][2]string{
		{"Replication.Factor", "5"},
		{"Replication.Factor", `"5"`},
		{"Swarm.ConnMgr.GracePeriod", `"1h"`},
		{"Replication.RepairInterval", `"1h"`}, // retired
		{"Addresses.Swarm", `["/ip4/0.0.0.0/tcp/1"]`},
		{"Addresses.Swarm", `["foo"]`},
		{"Addresses.API", `"/ip4/127.0.0.1/tcp/5001"`}, // retired
		{"Bootstrap", `["` + testBootstrap + `"]`},
		{"Swarm.ConnMgr", `{"LowWater":1,"HighWater":2,"GracePeriod":"1s"}`},
		{"Swarm", `{}`},
		{"Chunker.Size", "262144"},
		{"Storage.Quota", "-1"},
		{"Identity.PeerID", `""`},
		{"Gossip..Fanout", "1"},
		{"Gossip.Interval", `"500ms"`},
		{"Gossip", `{"Interval":"1s","SampleSize":64,"Fanout":17}`},
		{"Discovery.WithoutDHT", "true"},
		{"", ""},
		{"Discovery.MDNS", "null"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	base, err := config.DefaultConfig("default")
	if err != nil {
		f.Fatal(err)
	}
	want, err := json.Marshal(base)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		c := base.Clone()
		n, err := c.Set(key, value)
		if got, _ := json.Marshal(c); string(got) != string(want) {
			t.Fatalf("Set(%q, %q) changed its receiver", key, value)
		}
		if err != nil {
			if n != nil {
				t.Fatalf("Set(%q, %q) returned a config and an error", key, value)
			}
			return
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("Set(%q, %q) accepted an invalid config: %v", key, value, err)
		}
		if _, err := n.Get(key); err != nil {
			t.Fatalf("Get(%q) after Set: %v", key, err)
		}
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.Parse(b)
		if err != nil {
			t.Fatalf("Set(%q, %q) produced a config Parse rejects: %v", key, value, err)
		}
		equal(t, n, back)
	})
}

// FuzzParse guards the config file decoder: no panic on any input, and an
// accepted config validates and re-encodes to a config that parses equal.
func FuzzParse(f *testing.F) {
	for _, p := range config.Profiles {
		c, err := config.DefaultConfig(p)
		if err != nil {
			f.Fatal(err)
		}
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"Replication":{"RepairInterval":30}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid config: %v", err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.Parse(b)
		if err != nil {
			t.Fatalf("re-encoded config rejected: %v", err)
		}
		equal(t, c, back)
	})
}
