package stack

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
	"time"
)

// MotoInstallHint is the one line shown when moto_server is missing.
const MotoInstallHint = "moto_server not found on PATH: install it with pip install 'moto[server]'"

// ErrMotoMissing is returned (wrapped) by Start when moto_server is not installed.
var ErrMotoMissing = errors.New(MotoInstallHint)

// moto is one moto_server process owned by the stack.
type moto struct {
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	tail   *tailBuffer
	once   sync.Once
}

// startMoto launches moto_server on host:port and waits until it answers.
// The process gets its own process group (so a terminal's Ctrl-C reaches the
// stack first, which then stops moto in order) and, on Linux, is killed by
// the kernel if the stack dies without cleaning up.
func startMoto(ctx context.Context, path, host string, port int, loadManagedPolicies bool, log io.Writer) (*moto, error) {
	if path == "" {
		p, err := exec.LookPath("moto_server")
		if err != nil {
			return nil, ErrMotoMissing
		}
		path = p
	} else if _, err := exec.LookPath(path); err != nil {
		return nil, fmt.Errorf("%w (looked for %s)", ErrMotoMissing, path)
	}
	if err := portFree(host, port); err != nil {
		return nil, fmt.Errorf("moto port %d on %s is already in use; pick another with -moto-port (0 picks a free one)", port, host)
	}
	cmd := exec.Command(path, "-H", host, "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "MOTO_ALLOW_NONEXISTENT_REGION=true")
	if loadManagedPolicies {
		// moto only knows the AWS-managed policies (arn:aws:iam::aws:policy/...)
		// when asked to load them; that costs a few seconds on the first IAM call.
		cmd.Env = append(cmd.Env, "MOTO_IAM_LOAD_MANAGED_POLICIES=true")
	}
	tail := &tailBuffer{max: 8 << 10}
	var out io.Writer = tail
	if log != nil {
		out = io.MultiWriter(tail, log)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start moto_server: %w", err)
	}
	m := &moto{url: fmt.Sprintf("http://%s:%d", host, port), cmd: cmd, exited: make(chan struct{}), tail: tail}
	go func() {
		_ = cmd.Wait()
		close(m.exited)
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.After(60 * time.Second)
	for {
		resp, err := client.Get(m.url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return m, nil
		}
		select {
		case <-m.exited:
			return nil, fmt.Errorf("moto_server exited before it was ready: %s", m.tail.lastLine())
		case <-deadline:
			m.stop()
			return nil, fmt.Errorf("moto_server did not answer on %s within 60s", m.url)
		case <-ctx.Done(): // Ctrl-C while moto starts
			m.stop()
			return nil, fmt.Errorf("stopped while moto_server was starting: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop kills moto's process group and waits for it to be gone.
func (m *moto) stop() {
	m.once.Do(func() {
		if m.cmd.Process == nil {
			return
		}
		killGroup(m.cmd.Process.Pid)
		_ = m.cmd.Process.Kill()
		select {
		case <-m.exited:
		case <-time.After(10 * time.Second):
		}
	})
}

// pid is the moto_server process id.
func (m *moto) pid() int { return m.cmd.Process.Pid }

// portFree reports an error when host:port cannot be listened on.
func portFree(host string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// freePort asks the kernel for a free TCP port on host.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last max bytes written, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(string(bytes.TrimSpace(t.buf)), "\n")
	if len(lines) == 0 || lines[len(lines)-1] == "" {
		return "(no output)"
	}
	return strings.TrimSpace(lines[len(lines)-1])
}
