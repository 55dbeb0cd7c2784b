// Package api is the daemon's local HTTP API: a [Server] that exposes the
// concerns of a node ([core.Files], [core.Blocks], [core.Repo],
// [core.Network]) on a unix socket, and a [Client] that implements
// [core.Backend] too, so that the CLI runs every command the same way
// whether it talks to a daemon or opens the repo itself.
//
//	l, err := api.ListenUnix(filepath.Join(repoDir, "api.sock"))
//	srv := api.NewServer(n) // n is a *node.Node: every concern
//	go srv.Serve(l)
//	defer srv.Shutdown(ctx)
//
//	c, err := api.Dial(ctx, filepath.Join(repoDir, "api.sock"))
//	files, err := c.Ls(ctx)
//
// # Concerns
//
// [NewServer] serves every concern of one [core.Backend]. [NewServerOf]
// takes them one by one in [Backends], and leaves out the nil ones: their
// endpoints answer an error of kind busy (409), "api: this daemon does not
// serve repo". A test serves only the concern it exercises.
//
// The code is split the same way: files.go, blocks.go, repo.go and
// network.go each hold a concern's endpoints, by path, and the client's
// methods for them. An endpoint that answers one JSON document is one line
// on each side: jsonEndpoint(...) in the concern's endpoint map, and a
// client method that returns callJSON[T](...). stream.go holds both sides
// of the streaming responses.
//
// # Endpoints
//
// Every endpoint lives under /api/v0/, takes POST (kubo style) and reads its
// arguments from the query string: arg for the main argument (a CID, a
// capability or a multiaddr), plus name, mode and mediaType for add and all
// for peers. Endpoints that return one value answer with a JSON document:
// ls, share, block/stat, repo/verify, repo/gc, repo/stat, id, connect, peers,
// status. An empty list is [], never null, and a backend that returns no
// value and no error is an error (other, 500), so that a client call never
// yields a nil result without an error.
//
// # Streams
//
// Bodies stream in both directions; nothing is buffered whole.
//
//   - add reads the file from the request body and answers with
//     newline-delimited JSON while it reads: {"progress": n} lines (n is the
//     plaintext bytes stored so far, one line per 256 KiB or so), then one
//     {"result": ...} or {"error": ...} line.
//   - refs answers with one {"cid": ...} line per block, root first, and ends
//     with an {"error": ...} line if the walk fails.
//   - cat and block/get answer with the raw bytes. cat carries the file's
//     [core.FileInfo] as JSON in the X-Casd-File header (non-ASCII escaped as
//     \uXXXX, so any name survives). An error after the first byte arrives in
//     the X-Casd-Error trailer, and the client returns it after the bytes
//     that came before it.
//
// # Errors
//
// An error before the response body starts is an HTTP status chosen by the
// error's [core.Kind] (bad_input 400, not_found 404, integrity 422, busy 409,
// other 500) with a JSON body {"message": ..., "kind": ...}. The same object
// is what the error line of a stream and the X-Casd-Error trailer hold. The
// client turns it back into an [*Error], which [core.KindOf] classifies as
// the server did, and whose message is the server's, word for word.
//
// # Cancellation
//
// Every handler passes the request's context to the backend: a client that
// goes away, or whose context is cancelled, cancels the work on the daemon.
package api
