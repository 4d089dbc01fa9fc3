package client

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/joulehq/joule/api"
)

// DefaultServer is where schedulerd listens unless told otherwise.
const DefaultServer = "http://127.0.0.1:7070"

// DefaultTimeout bounds every request made through a Client from New.
const DefaultTimeout = 10 * time.Second

// maxReply bounds how much of a reply is read.
const maxReply = 64 << 20

// Client talks to one schedulerd. It is safe for concurrent use.
type Client struct {
	// HTTP sends the requests; New sets one with DefaultTimeout. Replace it
	// (before use) to change the timeout or the transport.
	HTTP *http.Client
	// Token is sent as "Authorization: Bearer Token" when not empty.
	Token string
	base  string // scheme://host[:port][/prefix], no trailing slash
}

// UseCA makes the client trust only the CA certificate(s) in the PEM file at
// path for https servers, as made by `schedulerd --tls-auto`.
func (c *Client) UseCA(path string) error {
	pem, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read CA certificate: %w; give the file from schedulerd's data dir (tls/ca.crt) with --ca or JOULE_CA", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("CA certificate %s holds no PEM certificate; give schedulerd's tls/ca.crt", path)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	c.HTTP.Transport = tr
	return nil
}

// ReadTokenFile reads a token from a file (such as DATA_DIR/admin.token),
// trimming surrounding space.
func ReadTokenFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return tok, nil
}

// New returns a client for the schedulerd at baseURL, such as
// "http://127.0.0.1:7070". It checks the URL but does not connect.
func New(baseURL string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("server %q is not a URL; use e.g. %s", baseURL, DefaultServer)
	}
	return &Client{
		HTTP: &http.Client{Timeout: DefaultTimeout},
		base: strings.TrimRight(u.String(), "/"),
	}, nil
}

// BaseURL is the server's URL as the client uses it.
func (c *Client) BaseURL() string { return c.base }

// APIError is a reply with an error status. Its message is the server's own
// (api.Error), e.g. "job j-7 not found".
type APIError struct {
	Status int    // HTTP status code
	Msg    string // the server's message
}

func (e *APIError) Error() string {
	if e.Msg != "" {
		return e.Msg
	}
	return fmt.Sprintf("schedulerd answered %d %s", e.Status, http.StatusText(e.Status))
}

// IsNotFound reports whether err is an APIError with status 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// UnreachableError means that nothing answered at the server's address
// (connection refused). It unwraps to the network error.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach schedulerd at %s: is it running? (set --server or JOULE_SERVER)", e.Server)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Submit sends a job spec and returns the new job's id. The server validates
// the spec again; a bad one comes back as an *APIError naming the field.
func (c *Client) Submit(ctx context.Context, spec api.JobSpec) (string, error) {
	var r api.SubmitReply
	if err := c.do(ctx, http.MethodPost, "/api/v1/jobs", spec, &r); err != nil {
		return "", err
	}
	if r.ID == "" {
		return "", fmt.Errorf("submit to %s: the reply has no job id", c.base)
	}
	return r.ID, nil
}

// Jobs lists every job schedulerd knows, oldest first, following the
// pages.
func (c *Client) Jobs(ctx context.Context) ([]api.Job, error) {
	all := []api.Job{}
	q := JobQuery{}
	for {
		p, err := c.ListJobs(ctx, q)
		if err != nil {
			return all, err
		}
		all = append(all, p.Jobs...)
		if p.Next == "" {
			return all, nil
		}
		q.After = p.Next
	}
}

// JobQuery selects jobs for ListJobs (GET /api/v1/jobs); empty fields
// match every job.
type JobQuery struct {
	States        []string
	User, Project string
	// FinishedAfter leaves out the jobs that ended at or before it.
	FinishedAfter time.Time
	// After is the cursor: the previous page's Next.
	After string
	// Limit is the most jobs in the page; 0 is the server's default.
	Limit int
}

// JobPage is one page of jobs, oldest first.
type JobPage struct {
	Jobs []api.Job
	// Next is the cursor of the next page; "" on the last.
	Next string
	// Total is how many jobs schedulerd remembers, filters aside.
	Total int
}

// ListJobs asks schedulerd for one page of the jobs q selects.
func (c *Client) ListJobs(ctx context.Context, q JobQuery) (JobPage, error) {
	v := url.Values{}
	if len(q.States) > 0 {
		v.Set("state", strings.Join(q.States, ","))
	}
	for k, s := range map[string]string{"user": q.User, "project": q.Project, "after": q.After} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.FinishedAfter.IsZero() {
		v.Set("finished_after", q.FinishedAfter.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/api/v1/jobs"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var p JobPage
	h, err := c.send(ctx, http.MethodGet, path, nil, &p.Jobs)
	if err != nil {
		return p, err
	}
	p.Next = h.Get("X-Next-After")
	p.Total, _ = strconv.Atoi(h.Get("X-Jobs-Total"))
	return p, nil
}

// Job returns one job; an unknown id is an *APIError with status 404.
func (c *Client) Job(ctx context.Context, id string) (api.Job, error) {
	var j api.Job
	err := c.do(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &j)
	return j, err
}

// Cancel asks schedulerd to cancel a job and returns the job as it is after
// the request.
func (c *Client) Cancel(ctx context.Context, id string) (api.Job, error) {
	var j api.Job
	err := c.do(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/cancel", nil, &j)
	return j, err
}

// Nodes lists the nodes and their GPUs' latest telemetry.
func (c *Client) Nodes(ctx context.Context) ([]api.Node, error) {
	var nodes []api.Node
	err := c.do(ctx, http.MethodGet, "/api/v1/nodes", nil, &nodes)
	return nodes, err
}

// Register announces an agent's node and its GPUs; the reply is the node's
// desired state, as for a heartbeat.
func (c *Client) Register(ctx context.Context, node string, hb api.Heartbeat) (api.HeartbeatReply, error) {
	var r api.HeartbeatReply
	err := c.do(ctx, http.MethodPost, "/api/v1/agents/"+url.PathEscape(node)+"/register", hb, &r)
	return r, err
}

// Heartbeat sends a node's telemetry and job reports and returns its desired
// state.
func (c *Client) Heartbeat(ctx context.Context, node string, hb api.Heartbeat) (api.HeartbeatReply, error) {
	var r api.HeartbeatReply
	err := c.do(ctx, http.MethodPost, "/api/v1/agents/"+url.PathEscape(node)+"/heartbeat", hb, &r)
	return r, err
}

// UploadModel sends a finished job's model directory (its plain files) to
// schedulerd, which serves predictions from it.
func (c *Client) UploadModel(ctx context.Context, jobID, dir string) error {
	archive, err := tarDir(dir)
	if err != nil {
		return fmt.Errorf("upload model of %s: %w", jobID, err)
	}
	return c.do(ctx, http.MethodPut, "/api/v1/models/"+url.PathEscape(jobID), bytes.NewReader(archive), nil)
}

// Predict asks for predictions of a finished job's model on rows of features.
func (c *Client) Predict(ctx context.Context, jobID string, rows []map[string]any) (api.PredictReply, error) {
	var out api.PredictReply
	err := c.do(ctx, http.MethodPost, "/api/v1/models/"+url.PathEscape(jobID)+"/predict", api.PredictRequest{Rows: rows}, &out)
	return out, err
}

// TokenInfo is a token as listed (never its secret).
type TokenInfo struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	Token     string    `json:"token,omitempty"` // only in CreateToken's reply
}

// CreateToken makes a token (admin only) and returns it with its secret,
// which schedulerd shows this once.
func (c *Client) CreateToken(ctx context.Context, name, role string) (TokenInfo, error) {
	var r TokenInfo
	err := c.do(ctx, http.MethodPost, "/api/v1/tokens", map[string]string{"name": name, "role": role}, &r)
	return r, err
}

// Tokens lists the stored tokens (admin only).
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	var r []TokenInfo
	err := c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, &r)
	return r, err
}

// RevokeToken deletes a token by name (admin only).
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(name), nil, nil)
}

// Backup streams a consistent snapshot of schedulerd's live database to w
// (admin only) and returns its size. A short stream is an error.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/admin/backup", nil)
	if err != nil {
		return 0, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := *c.HTTP
	hc.Timeout = 0 // a big database takes a while; ctx bounds it
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("backup from %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return 0, apiError(resp.StatusCode, data)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("backup from %s: stream broke after %d bytes: %w", c.base, n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fmt.Errorf("backup from %s: got %d of %d bytes", c.base, n, resp.ContentLength)
	}
	return n, nil
}

// Health checks that schedulerd answers /healthz with status "ok".
func (c *Client) Health(ctx context.Context) error {
	var r struct {
		Status string `json:"status"`
	}
	if err := c.do(ctx, http.MethodGet, "/healthz", nil, &r); err != nil {
		return err
	}
	if r.Status != "ok" {
		return fmt.Errorf("schedulerd at %s is not healthy: status %q", c.base, r.Status)
	}
	return nil
}

// do sends one request with body (if not nil) as JSON and decodes a 2xx
// reply into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.send(ctx, method, path, body, out)
	return err
}

// send is do that also returns the reply's headers.
func (c *Client) send(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	what := method + " " + path
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case io.Reader: // a model archive
		rd, ctype = b, "application/x-tar"
	default:
		data, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s: encode request: %w", what, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok || strings.Contains(err.Error(), "x509:") {
			return nil, fmt.Errorf("schedulerd at %s: its TLS certificate is not trusted (%w); give the CA with --ca or JOULE_CA (schedulerd's DATA_DIR/tls/ca.crt)", c.base, unwrapURLError(err))
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, &UnreachableError{Server: c.base, Err: err}
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", what, c.base, ctxErr)
		}
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return nil, fmt.Errorf("schedulerd at %s did not answer %s within %s: is it overloaded or stuck? (%w)", c.base, what, c.HTTP.Timeout, unwrapURLError(err))
		}
		return nil, fmt.Errorf("cannot reach schedulerd at %s (%s): %w; check --server or JOULE_SERVER", c.base, what, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return nil, fmt.Errorf("%s: read reply: %w", what, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, apiError(resp.StatusCode, data)
	}
	if out == nil {
		return resp.Header, nil
	}
	if raw, ok := out.(*[]byte); ok { // a non-JSON reply (CSV), as it came
		*raw = data
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("%s: the reply from %s is not what joule expects (%v); is --server pointing at schedulerd of the same version?", what, c.base, err)
	}
	return resp.Header, nil
}

// apiError builds the error for a non-2xx reply: the server's api.Error
// message, or, for a body that is not one (a proxy's page), a short excerpt.
func apiError(status int, body []byte) *APIError {
	var e api.Error
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return &APIError{Status: status, Msg: e.Error}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		return &APIError{Status: status}
	}
	return &APIError{Status: status, Msg: fmt.Sprintf("schedulerd answered %d %s: %s", status, http.StatusText(status), msg)}
}

// unwrapURLError drops *url.Error's "Get "http://...": " prefix, which
// repeats what the caller already says.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// tarDir packs the plain files of dir (no subdirectories) into a tar archive.
func tarDir(dir string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: 0o640, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Tariff returns the tariff in force.
func (c *Client) Tariff(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.do(ctx, http.MethodGet, "/api/v1/tariff", nil, &out)
	return out, err
}

// SetTariff replaces the tariff with the given JSON and returns it as stored,
// with its defaults filled in.
func (c *Client) SetTariff(ctx context.Context, tariff json.RawMessage) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.do(ctx, http.MethodPut, "/api/v1/tariff", tariff, &out)
	return out, err
}

// EnergyReport returns the energy, cost and CO2 of the UTC days from..to
// (YYYY-MM-DD, inclusive; empty for the server's default) grouped by job,
// user, project, node or day.
func (c *Client) EnergyReport(ctx context.Context, from, to, groupBy string) (api.Report, error) {
	var out api.Report
	err := c.do(ctx, http.MethodGet, "/api/v1/reports/energy?"+reportQuery(from, to, groupBy, "json"), nil, &out)
	return out, err
}

// EnergyReportCSV is EnergyReport as the server's CSV.
func (c *Client) EnergyReportCSV(ctx context.Context, from, to, groupBy string) ([]byte, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, "/api/v1/reports/energy?"+reportQuery(from, to, groupBy, "csv"), nil, &out)
	return out, err
}

func reportQuery(from, to, groupBy, format string) string {
	q := url.Values{}
	for k, v := range map[string]string{"from": from, "to": to, "group_by": groupBy, "format": format} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}
