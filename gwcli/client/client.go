// Package client is a typed HTTP client of the gateway REST API (/api/v1).
// It decodes responses into the API's own documents (package api/model)
// and turns error bodies into *APIError, which carries the HTTP status and
// the API's stable code and message. It never prints and never exits:
// gwcli decides what an error means for the user.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rbdgw/rbdgw/api/model"
)

// Prefix is where the API lives on a gateway.
const Prefix = "/api/v1"

// Options configure a Client.
type Options struct {
	// URL of a gateway's API: "http://127.0.0.1:5000" (the /api/v1 prefix
	// is added unless present).
	URL   string
	Token string
	// Timeout bounds each request (30 s when 0). Writes with Wait get
	// WaitTimeout on top.
	Timeout time.Duration
	// DryRun sends ?dry_run=true with every write.
	DryRun bool
	// Wait sends ?wait=applied with every write; WaitTimeout (the API's
	// default when 0) is passed as ?timeout=.
	Wait        bool
	WaitTimeout time.Duration
	// HTTP is the transport (a default one when nil).
	HTTP *http.Client
	// UserAgent names the caller.
	UserAgent string
}

// Client talks to one API endpoint. It is safe for concurrent use.
type Client struct {
	base     *url.URL // scheme://host[:port]/…/api/v1
	opts     Options
	http     *http.Client
	requests atomic.Int64
}

// New checks the URL and returns a client.
func New(o Options) (*Client, error) {
	raw := strings.TrimSpace(o.URL)
	if raw == "" {
		return nil, errors.New("no API URL: set RBDGW_API_URL, url: in the config file, or --url")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("API URL %q: expected http(s)://host:port, e.g. http://127.0.0.1:5000", o.URL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(u.Path, Prefix) {
		u.Path += Prefix
	}
	u.RawQuery, u.Fragment = "", ""
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	hc := o.HTTP
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 16
		tr.ResponseHeaderTimeout = 0
		hc = &http.Client{Transport: tr}
	}
	if o.UserAgent == "" {
		o.UserAgent = "gwcli"
	}
	return &Client{base: u, opts: o, http: hc}, nil
}

// URL is the API endpoint, for messages.
func (c *Client) URL() string { return c.base.String() }

// DryRun reports whether writes are dry runs.
func (c *Client) DryRun() bool { return c.opts.DryRun }

// Requests is the number of HTTP requests sent so far.
func (c *Client) Requests() int64 { return c.requests.Load() }

// APIError is an error answered by the API: its HTTP status and the body's
// code, message and details.
type APIError struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
	// Method and Path of the request, for debugging.
	Method, Path string
}

func (e *APIError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("%s %s: HTTP %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
}

// IsNotFound reports a 404 answer.
func IsNotFound(err error) bool { return statusOf(err) == http.StatusNotFound }

// IsCode reports an API error with the given code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

// IsPreconditionFailed reports a 412 answer (If-Match lost a race).
func IsPreconditionFailed(err error) bool { return statusOf(err) == http.StatusPreconditionFailed }

func statusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// AuthError is a 401: no token, or one the API does not accept.
type AuthError struct {
	URL      string
	HasToken bool
	Message  string
}

func (e *AuthError) Error() string {
	if !e.HasToken {
		return fmt.Sprintf("the API at %s needs a token: set RBDGW_API_TOKEN, token: in ~/.config/rbdgw/gwcli.yaml, or --token", e.URL)
	}
	msg := e.Message
	// Some servers repeat the reason ("invalid or revoked token: invalid
	// or revoked token"); say it once.
	if a, b, ok := strings.Cut(msg, ": "); ok && a == b {
		msg = a
	}
	return fmt.Sprintf("token rejected by %s: %s", e.URL, msg)
}

// UnreachableError is a request that got no HTTP answer.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	msg := e.Err.Error()
	var op *net.OpError
	if errors.As(e.Err, &op) && op.Err != nil {
		msg = op.Err.Error()
	}
	if errors.Is(e.Err, context.DeadlineExceeded) {
		msg = "no answer in time"
	}
	return fmt.Sprintf("cannot reach the API at %s: %s", e.URL, msg)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Response is what a request returned besides its document.
type Response struct {
	Status int
	ETag   string
	// Location is the URL path of what a 201 created
	// ("/api/v1/targets/<iqn>/luns/3").
	Location string
}

// request is one API call.
type request struct {
	method string
	path   string // below /api/v1, segments already escaped
	query  url.Values
	body   any
	// ifMatch is sent as If-Match when set.
	ifMatch string
	// createOnly sends If-None-Match: *: the write creates the entity
	// and fails with 412 when it exists, in the same etcd transaction.
	createOnly bool
	// raw receives the body undecoded instead of out.
	raw *[]byte
}

// do sends r and decodes a success body into out (when not nil).
func (c *Client) do(ctx context.Context, r request, out any) (Response, error) {
	q := r.query
	if r.method != http.MethodGet {
		if q == nil {
			q = url.Values{}
		}
		if c.opts.DryRun {
			q.Set("dry_run", "true")
		}
		if c.opts.Wait {
			q.Set("wait", "applied")
			if c.opts.WaitTimeout > 0 {
				q.Set("timeout", c.opts.WaitTimeout.String())
			}
		}
	}
	full := c.base.String() + r.path
	if len(q) > 0 {
		full += "?" + q.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return Response{}, err
		}
		body = bytes.NewReader(b)
	}
	timeout := c.opts.Timeout
	if r.method != http.MethodGet && c.opts.Wait {
		wt := c.opts.WaitTimeout
		if wt <= 0 {
			wt = 30 * time.Second
		}
		timeout += wt
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.method, full, body)
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	if r.ifMatch != "" {
		req.Header.Set("If-Match", r.ifMatch)
	}
	if r.createOnly {
		req.Header.Set("If-None-Match", "*")
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, context.Canceled) {
			return Response{}, ctxErr
		}
		return Response{}, &UnreachableError{URL: c.hostURL(), Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return Response{}, &UnreachableError{URL: c.hostURL(), Err: err}
	}
	res := Response{Status: resp.StatusCode, ETag: resp.Header.Get("ETag"), Location: resp.Header.Get("Location")}
	if resp.StatusCode >= 300 {
		return res, c.errorOf(r, resp, data)
	}
	if r.raw != nil {
		*r.raw = data
		return res, nil
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return res, fmt.Errorf("%s %s: the API answered a document gwcli cannot read: %v", r.method, Prefix+r.path, err)
		}
	}
	return res, nil
}

func (c *Client) hostURL() string { return c.base.Scheme + "://" + c.base.Host }

// errorOf decodes an error body.
func (c *Client) errorOf(r request, resp *http.Response, data []byte) error {
	var body model.Error
	_ = json.Unmarshal(data, &body)
	e := &APIError{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message,
		Details: body.Error.Details, Method: r.method, Path: Prefix + r.path}
	if e.Message == "" {
		// Not the API (a proxy, another server on the port).
		txt := strings.TrimSpace(string(data))
		if len(txt) > 200 || strings.ContainsAny(txt, "<\n") {
			txt = ""
		}
		e.Message = fmt.Sprintf("%s %s: HTTP %d %s", r.method, c.hostURL()+Prefix+r.path, resp.StatusCode, http.StatusText(resp.StatusCode))
		if txt != "" {
			e.Message += ": " + txt
		}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return &AuthError{URL: c.hostURL(), HasToken: c.opts.Token != "", Message: e.Message}
	}
	return e
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }

// diskPath is "/disks/{pool}/{image}" for "pool/image".
func diskPath(id string) string {
	pool, image, _ := strings.Cut(id, "/")
	return "/disks/" + seg(pool) + "/" + seg(image)
}
