package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/catalog"
)

// requireMoto skips without moto_server, except in CI, where it fails.
func requireMoto(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("moto_server"); err != nil {
		if awstest.InCI() {
			t.Fatalf("%s (CI=true: tests must not skip)", stack.MotoInstallHint)
		}
		t.Skip(stack.MotoInstallHint)
	}
}

// clock is a controllable clock: real time plus an offset the test moves.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset).UTC()
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// syncBuffer collects the stack's logs, shown when a test fails.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs a stack for the test on free ports, with fast schedules and
// no sweeper unless opt says otherwise, and stops it at the end.
func start(t *testing.T, opt stack.Options) *stack.Stack {
	t.Helper()
	requireMoto(t)
	logs := &syncBuffer{}
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:0"
	}
	if opt.Log == nil {
		opt.Log = logs
	}
	if opt.SweepInterval == 0 {
		opt.SweepInterval = -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, opt)
	require.NoError(t, err)
	t.Logf("%s %s", awstest.MotoMarker, s.MotoURL()) // counted by the test summary
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("stack logs:\n%s", logs.String())
		}
	})
	return s
}

func mustParse(t *testing.T, src string) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Parse("test-catalog.yaml", []byte(src))
	require.NoError(t, err)
	return c
}

// client talks HTTP to the gateway as one identity (X-Dev-Identity).
type client struct {
	t    *testing.T
	base string
	as   string
	http *http.Client
}

func newClient(t *testing.T, s *stack.Stack, identity string) *client {
	return &client{t: t, base: s.URL(), as: identity, http: &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (c *client) do(method, path, contentType string, body io.Reader) (int, []byte) {
	c.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = c.base + path
	}
	req, err := http.NewRequest(method, u, body)
	require.NoError(c.t, err)
	if c.as != "" {
		req.Header.Set(stack.DevIdentityHeader, c.as)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, b
}

// json sends v as JSON and decodes the answer into out.
func (c *client) json(method, path string, v, out any) int {
	c.t.Helper()
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		require.NoError(c.t, err)
		body = bytes.NewReader(b)
	}
	status, b := c.do(method, path, "application/json", body)
	if out != nil && status < 300 {
		require.NoError(c.t, json.Unmarshal(b, out), string(b))
	}
	return status
}

func (c *client) form(path string, values url.Values) (int, string) {
	c.t.Helper()
	status, b := c.do(http.MethodPost, path, "application/x-www-form-urlencoded", strings.NewReader(values.Encode()))
	return status, string(b)
}

func (c *client) get(path string) (int, string) {
	c.t.Helper()
	status, b := c.do(http.MethodGet, path, "", nil)
	return status, string(b)
}

func (c *client) request(id string) stack.Request {
	c.t.Helper()
	var r stack.Request
	require.Equal(c.t, http.StatusOK, c.json(http.MethodGet, "/requests/"+id, nil, &r))
	return r
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }

// exampleCatalog is infra/catalog.example.yaml, from this package's directory.
const exampleCatalog = "../../catalog.example.yaml"
