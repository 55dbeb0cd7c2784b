package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/casd/casd/core"
)

// maxErrorBody bounds how much of an error response the client reads.
const maxErrorBody = 64 << 10

// Client talks to a daemon's API. It has the method set of [Backend], with
// the same contracts, so the CLI uses a Client or a *node.Node alike.
// Errors the daemon reports come back as [*Error]; errors of the transport
// (the daemon died, ctx was cancelled) are wrapped with the endpoint's
// name. It is safe for concurrent use.
type Client struct {
	hc *http.Client
}

var _ Backend = (*Client)(nil)

// Dial returns a client of the daemon listening on the unix socket at
// socketPath. It connects once to check: if nothing listens there (no file,
// or a stale one), the error wraps [ErrNoDaemon]. Later calls dial again
// as needed, with the same check.
func Dial(ctx context.Context, socketPath string) (*Client, error) {
	d := &net.Dialer{Timeout: dialTimeout}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, "unix", socketPath)
		if err != nil && isNoDaemon(err) {
			return nil, fmt.Errorf("%w on %s: %w", ErrNoDaemon, socketPath, err)
		}
		return conn, err
	}
	conn, err := dial(ctx, "", "")
	if err != nil {
		if errors.Is(err, ErrNoDaemon) {
			return nil, err
		}
		return nil, fmt.Errorf("api: dial %s: %w", socketPath, err)
	}
	_ = conn.Close()
	return &Client{hc: &http.Client{
		// No timeout: bodies stream for as long as the file takes; the
		// caller's ctx bounds a call.
		Transport: &http.Transport{
			DialContext:        dial,
			DisableCompression: true,
			MaxIdleConns:       8,
		},
	}}, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// post sends a request and returns the response if its status is 200 OK;
// otherwise it returns the error the response holds.
func (c *Client) post(ctx context.Context, endpoint string, q url.Values, body io.Reader) (*http.Response, error) {
	u := "http://casd/api/v0/" + endpoint
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, fmt.Errorf("api: %s: %w", endpoint, err)
	}
	if body != nil {
		// Unknown length: stream chunked, without probing the reader.
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL, which says nothing useful
		}
		return nil, fmt.Errorf("api: %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readError(endpoint, resp)
	}
	return resp, nil
}

// readError decodes an error response.
func readError(endpoint string, resp *http.Response) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var e Error
	if jerr := json.Unmarshal(b, &e); jerr == nil && e.Message != "" {
		if e.Code == "" {
			e.Code = kindOfStatus(resp.StatusCode)
		}
		return &e
	}
	msg := strings.TrimSpace(string(b))
	if msg == "" && err != nil {
		msg = err.Error()
	}
	return &Error{
		Code:    kindOfStatus(resp.StatusCode),
		Message: fmt.Sprintf("api: %s: %s: %s", endpoint, resp.Status, msg),
	}
}

// call runs an endpoint that answers with one JSON document.
func (c *Client) call(ctx context.Context, endpoint string, q url.Values, out any) error {
	resp, err := c.post(ctx, endpoint, q, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadResponse, endpoint, err)
	}
	return nil
}

// readLines decodes the NDJSON lines of a stream response and calls fn for
// each. An error line ends the stream with its [*Error]; errors of fn are
// returned as they are.
func readLines(endpoint string, r io.Reader, fn func(*streamLine) error) error {
	dec := json.NewDecoder(r)
	for {
		var l streamLine
		err := dec.Decode(&l)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var se *json.SyntaxError
			var te *json.UnmarshalTypeError
			if errors.As(err, &se) || errors.As(err, &te) {
				return fmt.Errorf("%w: %s: %w", ErrBadResponse, endpoint, err)
			}
			return fmt.Errorf("api: %s: read response: %w", endpoint, err)
		}
		if l.Error != nil {
			if l.Error.Code == "" {
				l.Error.Code = core.KindOther
			}
			return l.Error
		}
		if err := fn(&l); err != nil {
			return err
		}
	}
}

// errAddDone ends the pipe of an add's body once the request is over.
var errAddDone = errors.New("api: add finished")

// Add sends the file r holds to the daemon, streaming it (nothing is
// buffered whole), and calls opt.Progress, if set, from the caller's
// goroutine as the daemon stores it.
//
// A goroutine feeds r into the request. Add waits for it before it
// returns, except when ctx is cancelled: then Add returns at once, and the
// goroutine ends as soon as the read from r in progress returns (a file's
// at once, a silent terminal's when it gets input).
func (c *Client) Add(ctx context.Context, r io.Reader, opt core.AddOptions) (*core.AddResult, error) {
	pr, pw := io.Pipe()
	var readErr error // the pump's, set before pumped closes
	pumped := make(chan struct{})
	go func() {
		defer close(pumped)
		ew := &errWriter{w: pw}
		_, err := io.Copy(ew, r)
		if err != nil && ew.err == nil {
			readErr = err
		}
		pw.CloseWithError(err)
	}()
	// The transport reads the body until the request ends, even after a
	// cancellation; ending the pipe is what stops it.
	stop := context.AfterFunc(ctx, func() { pw.CloseWithError(ctx.Err()) })
	res, err := c.add(ctx, pr, opt)
	stop()
	pr.CloseWithError(errAddDone)
	select {
	case <-pumped:
		if err != nil && readErr != nil {
			return nil, fmt.Errorf("api: add: read input: %w", readErr)
		}
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// add runs the add request with body.
func (c *Client) add(ctx context.Context, body io.Reader, opt core.AddOptions) (*core.AddResult, error) {
	q := query("name", opt.Name, "mediaType", opt.MediaType)
	if opt.Mode != 0 {
		q.Set("mode", "0"+strconv.FormatUint(uint64(opt.Mode), 8))
	}
	resp, err := c.post(ctx, "add", q, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var res *core.AddResult
	err = readLines("add", resp.Body, func(l *streamLine) error {
		switch {
		case l.Progress != nil:
			if opt.Progress != nil {
				opt.Progress(*l.Progress)
			}
		case l.Result != nil:
			res = new(core.AddResult)
			if err := json.Unmarshal(l.Result, res); err != nil {
				return fmt.Errorf("%w: add: result: %w", ErrBadResponse, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, fmt.Errorf("%w: add: stream ended without a result", ErrBadResponse)
	}
	return res, nil
}

// Cat streams the file ref names (a CID or a capability) into the writer
// open returns; open gets the file's info before the first byte, and its
// error is returned as is. An error the daemon meets after the first byte
// is returned after the bytes that came before it.
func (c *Client) Cat(ctx context.Context, ref string, open func(core.FileInfo) (io.Writer, error)) error {
	return c.download(ctx, "cat", ref, func(h http.Header) (io.Writer, error) {
		v := h.Get(HeaderFile)
		var info core.FileInfo
		if err := json.Unmarshal([]byte(v), &info); err != nil {
			return nil, fmt.Errorf("%w: cat: header %s: %w", ErrBadResponse, HeaderFile, err)
		}
		return open(info)
	})
}

// BlockGet writes the raw block cid into w.
func (c *Client) BlockGet(ctx context.Context, cid string, w io.Writer) error {
	return c.download(ctx, "block/get", cid, func(http.Header) (io.Writer, error) { return w, nil })
}

// download runs an endpoint that answers with raw bytes and may report a
// late error in the trailer.
func (c *Client) download(ctx context.Context, endpoint, arg string, open func(http.Header) (io.Writer, error)) error {
	resp, err := c.post(ctx, endpoint, query("arg", arg), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	w, err := open(resp.Header)
	if err != nil {
		return err
	}
	ew := &errWriter{w: w}
	if _, err := io.Copy(ew, resp.Body); err != nil {
		if ew.err != nil {
			return fmt.Errorf("api: %s: write: %w", endpoint, ew.err)
		}
		return fmt.Errorf("api: %s: read response: %w", endpoint, err)
	}
	if v := resp.Trailer.Get(TrailerError); v != "" {
		var e Error
		if err := json.Unmarshal([]byte(v), &e); err != nil || e.Message == "" {
			return fmt.Errorf("%w: %s: trailer %s: %q", ErrBadResponse, endpoint, TrailerError, v)
		}
		if e.Code == "" {
			e.Code = core.KindOther
		}
		return &e
	}
	return nil
}

// errWriter remembers the error of its writer, to tell it from a read error.
type errWriter struct {
	w   io.Writer
	err error
}

func (ew *errWriter) Write(p []byte) (int, error) {
	n, err := ew.w.Write(p)
	if err != nil {
		ew.err = err
	}
	return n, err
}

// Ls lists the node's own files.
func (c *Client) Ls(ctx context.Context) ([]core.ListEntry, error) {
	var v []core.ListEntry
	if err := c.call(ctx, "ls", nil, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Share returns the capability of one of the node's files.
func (c *Client) Share(ctx context.Context, cid string) (string, error) {
	var v shareResponse
	if err := c.call(ctx, "share", query("arg", cid), &v); err != nil {
		return "", err
	}
	return v.Capability, nil
}

// Refs calls fn with the CID of every block of ref, root first, and stops at
// fn's first error, which it returns as is.
func (c *Client) Refs(ctx context.Context, ref string, fn func(cid string) error) error {
	resp, err := c.post(ctx, "refs", query("arg", ref), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return readLines("refs", resp.Body, func(l *streamLine) error {
		if l.Cid == "" {
			return fmt.Errorf("%w: refs: line without a cid", ErrBadResponse)
		}
		return fn(l.Cid)
	})
}

// BlockStat describes block cid.
func (c *Client) BlockStat(ctx context.Context, cid string) (*core.BlockStat, error) {
	v := new(core.BlockStat)
	if err := c.call(ctx, "block/stat", query("arg", cid), v); err != nil {
		return nil, err
	}
	return v, nil
}

// RepoVerify verifies the daemon's blockstore.
func (c *Client) RepoVerify(ctx context.Context) (*core.VerifyReport, error) {
	v := new(core.VerifyReport)
	if err := c.call(ctx, "repo/verify", nil, v); err != nil {
		return nil, err
	}
	return v, nil
}

// RepoGC collects the daemon's unpinned blocks.
func (c *Client) RepoGC(ctx context.Context) (*core.GCResult, error) {
	v := new(core.GCResult)
	if err := c.call(ctx, "repo/gc", nil, v); err != nil {
		return nil, err
	}
	return v, nil
}

// RepoStat describes the daemon's repo.
func (c *Client) RepoStat(ctx context.Context) (*core.RepoStat, error) {
	v := new(core.RepoStat)
	if err := c.call(ctx, "repo/stat", nil, v); err != nil {
		return nil, err
	}
	return v, nil
}

// ID describes the daemon's peer.
func (c *Client) ID(ctx context.Context) (*core.IDInfo, error) {
	v := new(core.IDInfo)
	if err := c.call(ctx, "id", nil, v); err != nil {
		return nil, err
	}
	return v, nil
}

// Connect makes the daemon connect to the peer at multiaddr addr.
func (c *Client) Connect(ctx context.Context, addr string) error {
	return c.call(ctx, "connect", query("arg", addr), new(struct{}))
}

// Peers lists the daemon's connected peers, or all it knows.
func (c *Client) Peers(ctx context.Context, all bool) ([]core.PeerInfo, error) {
	var v []core.PeerInfo
	if err := c.call(ctx, "peers", query("all", strconv.FormatBool(all)), &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Status reports the replication of one of the node's files.
func (c *Client) Status(ctx context.Context, cid string) (*core.StatusInfo, error) {
	v := new(core.StatusInfo)
	if err := c.call(ctx, "status", query("arg", cid), v); err != nil {
		return nil, err
	}
	return v, nil
}

// query builds a query string from key, value pairs, leaving out empty
// values.
func query(kv ...string) url.Values {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}
