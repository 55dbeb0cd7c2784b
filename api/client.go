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
	"strings"

	"github.com/casd/casd/core"
)

// maxErrorBody bounds how much of an error response the client reads.
const maxErrorBody = 64 << 10

// Client talks to a daemon's API. It implements [core.Backend], with the
// same contracts, so the CLI uses a Client or a *node.Node alike.
// Errors the daemon reports come back as [*Error]; errors of the transport
// (the daemon died, ctx was cancelled) are wrapped with the endpoint's
// name. It is safe for concurrent use.
type Client struct {
	hc *http.Client
}

var _ core.Backend = (*Client)(nil)

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

// callJSON runs an endpoint that answers with one JSON document and
// decodes it as a T: each JSON method of the client is one call of it. Its
// server side is [jsonEndpoint]. A null document where T is a pointer is a
// bad response, so that a caller never gets a nil result without an error.
func callJSON[T any](ctx context.Context, c *Client, endpoint string, q url.Values) (T, error) {
	var zero T
	resp, err := c.post(ctx, endpoint, q, nil)
	if err != nil {
		return zero, err
	}
	defer resp.Body.Close()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return zero, fmt.Errorf("%w: %s: %w", ErrBadResponse, endpoint, err)
	}
	if isNilPointer(v) {
		return zero, fmt.Errorf("%w: %s: null result", ErrBadResponse, endpoint)
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
