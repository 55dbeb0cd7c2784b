package api

import (
	"context"
	"io"
	"net/http"

	"github.com/casd/casd/core"
)

// The blocks concern: block/get, block/stat ([core.Blocks]).

// blocksEndpoints are the endpoints of b, by path under /api/v0/.
func blocksEndpoints(b core.Blocks) map[string]http.HandlerFunc {
	s := blocksServer{b}
	return map[string]http.HandlerFunc{
		"block/get":  s.get,
		"block/stat": jsonEndpoint(withArg(b.BlockStat)),
	}
}

// blocksServer holds the handler of the streaming block/get.
type blocksServer struct{ b core.Blocks }

func (s blocksServer) get(w http.ResponseWriter, r *http.Request) {
	c, ok := arg(w, r)
	if !ok {
		return
	}
	bw := startBody(w)
	endBody(w, r, bw, s.b.BlockGet(r.Context(), c, bw))
}

// BlockGet writes the raw block cid into w.
func (c *Client) BlockGet(ctx context.Context, cid string, w io.Writer) error {
	return c.download(ctx, "block/get", cid, func(http.Header) (io.Writer, error) { return w, nil })
}

// BlockStat describes block cid.
func (c *Client) BlockStat(ctx context.Context, cid string) (*core.BlockStat, error) {
	return callJSON[*core.BlockStat](ctx, c, "block/stat", query("arg", cid))
}
