package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/casd/casd/core"
)

// The network concern: id, connect, peers, status, repair ([core.Network]).

// networkEndpoints are the endpoints of n, by path under /api/v0/.
func networkEndpoints(n core.Network) map[string]http.HandlerFunc {
	s := networkServer{n}
	return map[string]http.HandlerFunc{
		"id":      jsonEndpoint(noArg(n.ID)),
		"connect": jsonEndpoint(withArg(s.connect)),
		"peers":   jsonEndpoint(s.peers),
		"status":  jsonEndpoint(withArg(n.Status)),
		"repair":  jsonEndpoint(s.repair),
	}
}

// networkServer adapts the network calls whose arguments or results are
// not those of a JSON endpoint.
type networkServer struct{ n core.Network }

// connect answers {} on success.
func (s networkServer) connect(ctx context.Context, addr string) (struct{}, error) {
	return struct{}{}, s.n.Connect(ctx, addr)
}

// peers reads the optional boolean argument "all".
func (s networkServer) peers(ctx context.Context, r *http.Request) ([]core.PeerInfo, error) {
	all := false
	if v := r.URL.Query().Get("all"); v != "" {
		var err error
		if all, err = strconv.ParseBool(v); err != nil {
			return nil, badInput("bad value of all: " + strconv.Quote(v))
		}
	}
	return s.n.Peers(ctx, all)
}

// repair reads the optional argument "arg": a CID, or none for every
// owned root.
func (s networkServer) repair(ctx context.Context, r *http.Request) ([]core.RepairReport, error) {
	return s.n.Repair(ctx, r.URL.Query().Get("arg"))
}

// ID describes the daemon's peer.
func (c *Client) ID(ctx context.Context) (*core.IDInfo, error) {
	return callJSON[*core.IDInfo](ctx, c, "id", nil)
}

// Connect makes the daemon connect to the peer at multiaddr addr.
func (c *Client) Connect(ctx context.Context, addr string) error {
	_, err := callJSON[struct{}](ctx, c, "connect", query("arg", addr))
	return err
}

// Peers lists the daemon's connected peers, or all it knows.
func (c *Client) Peers(ctx context.Context, all bool) ([]core.PeerInfo, error) {
	return callJSON[[]core.PeerInfo](ctx, c, "peers", query("all", strconv.FormatBool(all)))
}

// Status reports the replication of one of the node's files.
func (c *Client) Status(ctx context.Context, cid string) (*core.StatusInfo, error) {
	return callJSON[*core.StatusInfo](ctx, c, "status", query("arg", cid))
}

// Repair makes the daemon check the replicas of cid (of every owned root
// when cid is empty) now, and waits for the reports.
func (c *Client) Repair(ctx context.Context, cid string) ([]core.RepairReport, error) {
	return callJSON[[]core.RepairReport](ctx, c, "repair", query("arg", cid))
}
