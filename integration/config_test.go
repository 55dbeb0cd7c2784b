package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestConfig gets and sets config keys, rejects bad keys and values without
// touching the repo, and shows the whole config as JSON without secrets.
func TestConfig(t *testing.T) {
	t.Parallel()
	n, other := newNode(t), newNode(t)

	res := n.run(t, "config", "Replication.Factor", "0")
	n.requireOK(t, res)
	check(t, res.out() == "", "config set must print nothing: %s", res)
	res = n.run(t, "config", "Replication.Factor")
	n.requireOK(t, res)
	check(t, res.out() == "0\n", "config get Replication.Factor after setting 0: %s", res)

	// A bootstrap address with a real peer id, taken from another node.
	res = other.run(t, "id", "--json")
	other.requireOK(t, res)
	var id idJSON
	noErr(t, json.Unmarshal(res.stdout, &id), "id --json: "+res.out())
	check(t, id.ID == other.id, "id --json id %q, init said %q", id.ID, other.id)
	addr := "/ip4/127.0.0.1/tcp/4001/p2p/" + id.ID
	boot, err := json.Marshal([]string{addr})
	noErr(t, err)
	res = n.run(t, "config", "Bootstrap", string(boot))
	n.requireOK(t, res)
	check(t, res.out() == "", "config set must print nothing: %s", res)
	res = n.run(t, "config", "Bootstrap")
	n.requireOK(t, res)
	var gotBoot []string
	noErr(t, json.Unmarshal(res.stdout, &gotBoot), "config Bootstrap: "+res.out())
	check(t, len(gotBoot) == 1 && gotBoot[0] == addr, "config Bootstrap = %q, want [%q]", gotBoot, addr)

	// An object key prints the object.
	res = n.run(t, "config", "Replication")
	n.requireOK(t, res)
	var repl map[string]any
	noErr(t, json.Unmarshal(res.stdout, &repl), "config Replication: "+res.out())
	check(t, repl["Factor"] == float64(0), "config Replication.Factor inside the object: %v", repl)

	bad := []struct {
		name string
		args []string
	}{
		{"unknown key get", []string{"config", "No.Such.Key"}},
		{"unknown key set", []string{"config", "No.Such.Key", "1"}},
		{"wrong type", []string{"config", "Replication.Factor", `"three"`}},
		{"not JSON", []string{"config", "Replication.Factor", "three"}},
		{"out of range", []string{"config", "Replication.Factor", "-1"}},
		{"bad multiaddr", []string{"config", "Bootstrap", `["not-a-multiaddr"]`}},
		{"multiaddr without peer id", []string{"config", "Bootstrap", `["/ip4/127.0.0.1/tcp/4001"]`}},
		{"bootstrap not a list", []string{"config", "Bootstrap", `"/ip4/127.0.0.1/tcp/4001/p2p/` + id.ID + `"`}},
		{"bad duration", []string{"config", "Swarm.ConnMgr.GracePeriod", `"soon"`}},
		{"change peer id", []string{"config", "Identity.PeerID", `"` + id.ID + `"`}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, n.repo)
			res := n.run(t, tt.args...)
			requireFail(t, res, exitUsage)
			check(t, len(res.stdout) == 0, "failed config wrote to stdout: %s", res)
			requireUnchanged(t, before, n.repo)
		})
	}

	res = n.run(t, "config", "show")
	n.requireOK(t, res)
	var show map[string]any
	noErr(t, json.Unmarshal(res.stdout, &show), "config show is not JSON: "+res.out())
	check(t, strings.Contains(res.out(), "\n  "), "config show must be indented JSON: %s", res)
	repl, _ = show["Replication"].(map[string]any)
	check(t, repl != nil && repl["Factor"] == float64(0), "config show Replication: %v", show["Replication"])
	for _, k := range secretKeys(show, "") {
		t.Errorf("config show holds a secret-looking key %s", k)
	}
	check(t, strings.Contains(res.out(), addr), "config show lacks the bootstrap address %s", addr)
}

// idJSON is `casd id --json`.
type idJSON struct {
	ID           string          `json:"id"`
	Addrs        json.RawMessage `json:"addrs"`
	AgentVersion string          `json:"agentVersion"`
	Protocols    []string        `json:"protocols"`
}

// secretKeys returns the paths of JSON keys whose names suggest a secret.
func secretKeys(v any, prefix string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			p := prefix + "." + k
			low := strings.ToLower(k)
			if strings.Contains(low, "priv") || strings.Contains(low, "secret") ||
				strings.Contains(low, "master") || strings.Contains(low, "passphrase") {
				out = append(out, p)
			}
			out = append(out, secretKeys(x, p)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, secretKeys(x, prefix+"[]")...)
		}
	}
	return out
}
