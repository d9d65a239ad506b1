package stack_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/stack"
)

func startErr(t *testing.T, opt stack.Options) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opt.Log = &syncBuffer{}
	s, err := stack.Start(ctx, opt)
	if s != nil {
		s.Close()
	}
	require.Error(t, err)
	require.Nil(t, s)
	return err
}

func TestStartFailsClearlyOnABusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	addr := l.Addr().String()

	err = startErr(t, stack.Options{Addr: addr, MotoPath: "/nonexistent/moto_server"})
	assert.Equal(t, "gateway address "+addr+" is already in use (is another make run going?); pick another with -addr", err.Error())
}

func TestStartFailsClearlyOnABusyMotoPort(t *testing.T) {
	requireMoto(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	err = startErr(t, stack.Options{Addr: "127.0.0.1:0", MotoPort: port, CatalogPath: exampleCatalog})
	assert.Contains(t, err.Error(), "moto port "+strconv.Itoa(port)+" on 127.0.0.1 is already in use")
}

func TestStartFailsClearlyOnABadCatalog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(path, []byte("version: 1\nroles:\n  - id: Bad_ID\n    provider: iam-nothing\n"), 0o600))

	err := startErr(t, stack.Options{Addr: "127.0.0.1:0", CatalogPath: path, MotoPath: "/nonexistent/moto_server"})
	var ce *stack.CatalogError
	require.ErrorAs(t, err, &ce)
	lines := splitLines(err.Error())
	require.NotEmpty(t, lines)
	for _, line := range lines {
		assert.Regexp(t, `^bad catalog: `+regexpQuote(path)+`:\d+:\d+: `, line, "each problem is one line naming the file and line")
	}
	assert.Contains(t, err.Error(), path+":3:")
}

func TestStartFailsClearlyOnAMissingCatalog(t *testing.T) {
	err := startErr(t, stack.Options{Addr: "127.0.0.1:0", CatalogPath: "no/such/catalog.yaml", MotoPath: "/nonexistent/moto_server"})
	assert.Equal(t, "catalog no/such/catalog.yaml not found (run from the repository root, or pass -catalog)", err.Error())
}

func TestStartFailsClearlyWithoutMoto(t *testing.T) {
	err := startErr(t, stack.Options{Addr: "127.0.0.1:0", CatalogPath: exampleCatalog, MotoPath: "/nonexistent/moto_server"})
	assert.True(t, errors.Is(err, stack.ErrMotoMissing))
	assert.Contains(t, err.Error(), "pip install 'moto[server]'")
}

func TestStartReleasesThePortOnFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	startErr(t, stack.Options{Addr: addr, CatalogPath: exampleCatalog, MotoPath: "/nonexistent/moto_server"})
	l, err = net.Listen("tcp", addr)
	require.NoError(t, err, "a failed start must not keep the gateway port")
	l.Close()
}

// TestCtrlCWhileMotoStarts: a stop asked for while moto_server is still
// starting ends the start at once, with moto gone.
func TestCtrlCWhileMotoStarts(t *testing.T) {
	requireMoto(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as if Ctrl-C came before moto answered
	s, err := stack.Start(ctx, stack.Options{Addr: "127.0.0.1:0", CatalogPath: exampleCatalog, Log: &syncBuffer{}})
	if s != nil {
		s.Close()
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stopped while moto_server was starting", "not the 60 s readiness wait")
}
