package api

import (
	"context"
	"net/http"

	"github.com/casd/casd/core"
)

// The repo concern: repo/verify, repo/gc, repo/stat ([core.Repo]).

// repoEndpoints are the endpoints of r, by path under /api/v0/.
func repoEndpoints(r core.Repo) map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"repo/verify": jsonEndpoint(noArg(r.RepoVerify)),
		"repo/gc":     jsonEndpoint(noArg(r.RepoGC)),
		"repo/stat":   jsonEndpoint(noArg(r.RepoStat)),
	}
}

// RepoVerify verifies the daemon's blockstore.
func (c *Client) RepoVerify(ctx context.Context) (*core.VerifyReport, error) {
	return callJSON[*core.VerifyReport](ctx, c, "repo/verify", nil)
}

// RepoGC collects the daemon's unpinned blocks.
func (c *Client) RepoGC(ctx context.Context) (*core.GCResult, error) {
	return callJSON[*core.GCResult](ctx, c, "repo/gc", nil)
}

// RepoStat describes the daemon's repo.
func (c *Client) RepoStat(ctx context.Context) (*core.RepoStat, error) {
	return callJSON[*core.RepoStat](ctx, c, "repo/stat", nil)
}
