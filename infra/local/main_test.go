package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/awstest"
)

const exampleCatalog = "../catalog.example.yaml"

// runCmd runs the command as `make run` would and returns its exit code and output.
func runCmd(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errs syncBuffer
	code := run(ctx, args, &out, &errs, nil)
	return code, out.String(), errs.String()
}

func TestBusyPortIsOneClearLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	addr := l.Addr().String()

	code, _, stderr := runCmd(t, context.Background(), "-addr", addr, "-catalog", exampleCatalog)
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: gateway address "+addr+" is already in use (is another make run going?); pick another with -addr\n", stderr)
}

func TestBadCatalogNamesFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte("version: 1\nroles:\n  - id: ok-id\n    provider: iam-group\n    target: {group: g}\n    requesters: [a@example.com]\n    duration: {max: 99h}\n"), 0o600))

	code, _, stderr := runCmd(t, context.Background(), "-addr", "127.0.0.1:0", "-catalog", path)
	assert.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	require.NotEmpty(t, lines)
	for _, line := range lines {
		assert.Regexp(t, "^error: bad catalog: "+regexp.QuoteMeta(path)+`:\d+:\d+: `, line)
	}
	assert.Contains(t, stderr, path+":7:")
	assert.Contains(t, stderr, "duration.max")
}

func TestMissingMotoSaysHowToInstallIt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	code, _, stderr := runCmd(t, context.Background(), "-addr", "127.0.0.1:0", "-catalog", exampleCatalog)
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: moto_server not found on PATH: install it with pip install 'moto[server]'\n", stderr)
}

func TestBadFlags(t *testing.T) {
	code, _, stderr := runCmd(t, context.Background(), "-no-such-flag")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "flag provided but not defined: -no-such-flag")
	code, _, stderr = runCmd(t, context.Background(), "extra")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, `unexpected argument "extra"`)
}

// TestRunStartsAndStopsCleanly is `make run` then Ctrl-C: every step is
// printed, then a ready line; the gateway answers; stopping leaves no
// moto_server behind.
func TestRunStartsAndStopsCleanly(t *testing.T) {
	if _, err := exec.LookPath("moto_server"); err != nil {
		if awstest.InCI() {
			t.Fatal(stack.MotoInstallHint)
		}
		t.Skip(stack.MotoInstallHint)
	}
	port, err := awstest.FreePort()
	require.NoError(t, err)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", addr, "-catalog", exampleCatalog, "-fast-schedules", "-sweep-interval", "1m"}, &out, &errs, nil)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "ready in ") }, 90*time.Second, 50*time.Millisecond, "stdout:\n%s\nstderr:\n%s", &out, &errs)

	stdout := out.String()
	for _, step := range []string{"catalog", "moto_server", "dynamodb", "scheduler", "ses", "secrets", "iam", "functions", "dispatcher", "sweeper", "gateway"} {
		assert.Regexp(t, `(?m)^  `+step+` +\S`, stdout, "step %s is reported", step)
	}
	assert.Contains(t, stdout, "fires at the exact 1s (-fast-schedules)")
	assert.Contains(t, stdout, "http://"+addr+"/portal")
	m := regexp.MustCompile(`moto_server  (\S+) \(pid (\d+)\)`).FindStringSubmatch(stdout)
	require.NotNil(t, m)
	t.Logf("%s %s", awstest.MotoMarker, m[1]) // counted by the test summary
	pid, _ := strconv.Atoi(m[2])

	for path, want := range map[string]int{"/signin": 200, "/healthz": 200, "/portal": 303} {
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Get("http://" + addr + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, path)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/catalog", nil)
	req.Header.Set("X-Dev-Identity", "alice@example.com")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	cancel() // Ctrl-C
	select {
	case code := <-done:
		assert.Equal(t, 0, code)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	assert.Contains(t, out.String(), "stopped (gateway closed")
	p, err := os.FindProcess(pid)
	if err == nil {
		err = p.Signal(syscall.Signal(0))
	}
	assert.Error(t, err, "moto_server (pid %d) is gone", pid)
	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Error(t, err, "the gateway port is closed")
}

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
