// Package awstest runs a real moto_server for a test package: started on a
// free port at first use, reset between tests, stopped when the package's
// tests end. Outside CI a missing moto_server skips the tests with the
// install command; with CI=true it fails them, so CI never passes by skipping.
package awstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// InstallHint says how to get moto_server.
const InstallHint = "moto_server not found: install it with pip install 'moto[server]'"

// MotoMarker starts the log line of every test that runs against moto.
const MotoMarker = "awstest: moto_server at"

// Region and AccountID are moto's defaults.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
)

// Server is one running moto_server.
type Server struct {
	URL string
	cmd *exec.Cmd
}

var (
	shared     *Server
	sharedErr  error
	sharedOnce sync.Once
)

// Main is for TestMain: it runs the tests and stops the package's server.
func Main(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}

// InCI reports whether CI is set true (CI=true, or 1, as strconv.ParseBool
// reads it), where tests must never skip for a missing tool. The test
// summary and .ci/check-tools.sh read it the same way.
func InCI() bool {
	v, _ := strconv.ParseBool(os.Getenv("CI"))
	return v
}

// Require returns the package's moto server, reset to an empty state. It
// skips the test when moto_server is missing (fails in CI).
func Require(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start() })
	if sharedErr != nil {
		if errors.Is(sharedErr, exec.ErrNotFound) && !InCI() {
			t.Skip(InstallHint)
		}
		t.Fatalf("moto: %v", sharedErr)
	}
	if err := shared.Reset(); err != nil {
		t.Fatalf("moto reset: %v", err)
	}
	// The test summary counts tests that log this marker as moto-backed.
	t.Logf("%s %s", MotoMarker, shared.URL)
	return shared
}

// Start launches moto_server on a free loopback port and waits until it answers.
func Start() (*Server, error) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", InstallHint, exec.ErrNotFound)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return StartAt(path, "127.0.0.1", port)
}

// StartAt launches the given moto_server binary on host:port.
func StartAt(path, host string, port int) (*Server, error) {
	cmd := exec.Command(path, "-H", host, "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "MOTO_ALLOW_NONEXISTENT_REGION=true")
	cmd.SysProcAttr = sysProcAttr()
	if os.Getenv("AWSTEST_VERBOSE") != "" {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	s := &Server{URL: fmt.Sprintf("http://%s:%d", host, port), cmd: cmd}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("moto_server exited before it was ready: %v", err)
		case <-deadline:
			s.Stop()
			return nil, fmt.Errorf("moto_server did not answer on %s within 30s", s.URL)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the server.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
}

// Reset drops every resource moto holds.
func (s *Server) Reset() error {
	resp, err := http.Post(s.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset: %s", resp.Status)
	}
	return nil
}

// Config is an SDK config pointing every client at this server.
func (s *Server) Config() aws.Config {
	return Config(s.URL)
}

// Config is an SDK config for the moto server at url, with static test
// credentials and no retries hidden from the test. Its HTTP client sends
// one request at a time to that server (see SerialClient).
func Config(url string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String(url),
		HTTPClient:   SerialClient(url, &http.Client{Timeout: 30 * time.Second}),
	}
}

// SerialClient sends the requests for the moto server at url one at a
// time, across every client in this process that talks to it. moto_server
// answers on several threads without a lock, and its TransactWriteItems
// deep-copies whole tables and restores them when a transaction fails, so
// concurrent writes can undo each other (a committed transition rolled back
// by another transaction's failure: an audit record without its state
// change) or fail with HTTP 500 ("dictionary changed size during
// iteration"). AWS APIs are atomic per request; moto is, one request at a
// time. Callers still run concurrently, so races between their steps stay.
func SerialClient(url string, next aws.HTTPClient) aws.HTTPClient {
	turn, _ := serverTurns.LoadOrStore(strings.TrimRight(url, "/"), make(chan struct{}, 1))
	return &serialClient{turn: turn.(chan struct{}), next: next}
}

var serverTurns sync.Map // moto URL -> a one-slot channel: whose turn it is

type serialClient struct {
	turn chan struct{}
	next aws.HTTPClient
}

func (s *serialClient) Do(r *http.Request) (*http.Response, error) {
	select { // wait for the turn, or give up with the request's context
	case s.turn <- struct{}{}:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	defer func() { <-s.turn }()
	resp, err := s.next.Do(r)
	if err != nil {
		return resp, err
	}
	// The whole answer is read under the lock: the next request must not
	// start while moto is still writing this one.
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, err
}

// Context is a test context that ends with the test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// FreePort asks the kernel for a free TCP port on loopback.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
