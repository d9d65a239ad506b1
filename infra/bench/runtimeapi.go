package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RuntimeAPIVersion is the path prefix of the Lambda Runtime API.
const RuntimeAPIVersion = "/2018-06-01"

// Invocation is one event a RuntimeAPI hands out, and what became of it.
type Invocation struct {
	RequestID string
	Event     []byte
	Deadline  time.Duration // from the moment it is handed out; zero means 15 minutes

	// Filled in as the function runs; read them after Done is closed.
	FirstNext time.Time // the first GET .../invocation/next
	Responded time.Time // the POST of the response, or of the error
	Outcome   string    // "response", "error" or "init-error"
	Body      []byte    // what the function posted
	done      chan struct{}
	once      sync.Once
}

// Done is closed when the function has posted a response or an error (for
// this invocation, or an init error).
func (inv *Invocation) Done() <-chan struct{} { return inv.done }

// RuntimeAPI is a minimal Lambda Runtime API for one function process at a
// time: it hands out the armed invocation on the first GET
// /runtime/invocation/next, records the response (or error), and holds any
// further GET until the next Arm or until the client goes away, as the
// service does between invocations. It implements
//
//	GET  /2018-06-01/runtime/invocation/next
//	POST /2018-06-01/runtime/invocation/{id}/response
//	POST /2018-06-01/runtime/invocation/{id}/error
//	POST /2018-06-01/runtime/init/error
type RuntimeAPI struct {
	// FunctionARN is sent as Lambda-Runtime-Invoked-Function-Arn.
	FunctionARN string
	// Now is the clock (time.Now by default), for tests.
	Now func() time.Time

	mu      sync.Mutex
	cur     *Invocation
	given   bool
	rearmed chan struct{}

	ln  net.Listener
	srv *http.Server
}

// Start listens on a free loopback port.
func (a *RuntimeAPI) Start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	a.ln = ln
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.FunctionARN == "" {
		a.FunctionARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"
	}
	a.mu.Lock()
	a.rearmed = make(chan struct{})
	a.mu.Unlock()
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	return nil
}

// Addr is host:port, the value of AWS_LAMBDA_RUNTIME_API.
func (a *RuntimeAPI) Addr() string { return a.ln.Addr().String() }

// Close stops the server.
func (a *RuntimeAPI) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		return a.srv.Close()
	}
	return nil
}

// Arm makes inv the next invocation handed out. Held GETs from a previous
// process are released (with 410 Gone: that process is being stopped).
func (a *RuntimeAPI) Arm(inv *Invocation) {
	inv.done = make(chan struct{})
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur, a.given = inv, false
	close(a.rearmed)
	a.rearmed = make(chan struct{})
}

func (inv *Invocation) finish(outcome string, body []byte, at time.Time) {
	inv.once.Do(func() {
		inv.Responded, inv.Outcome, inv.Body = at, outcome, body
		close(inv.done)
	})
}

// ServeHTTP implements the Runtime API routes.
func (a *RuntimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := a.Now()
	path := strings.TrimPrefix(r.URL.Path, RuntimeAPIVersion)
	switch {
	case r.Method == http.MethodGet && path == "/runtime/invocation/next":
		a.next(w, r, now)
	case r.Method == http.MethodPost && path == "/runtime/init/error":
		body, _ := io.ReadAll(io.LimitReader(r.Body, 6<<20))
		a.mu.Lock()
		inv := a.cur
		a.mu.Unlock()
		if inv != nil {
			inv.finish("init-error", body, now)
		}
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/runtime/invocation/"):
		rest := strings.TrimPrefix(path, "/runtime/invocation/")
		id, what, ok := strings.Cut(rest, "/")
		if !ok || (what != "response" && what != "error") {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 6<<20))
		a.mu.Lock()
		inv := a.cur
		a.mu.Unlock()
		if inv == nil || inv.RequestID != id {
			http.Error(w, `{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}`, http.StatusBadRequest)
			return
		}
		inv.finish(what, body, now)
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, r)
	}
}

func (a *RuntimeAPI) next(w http.ResponseWriter, r *http.Request, now time.Time) {
	a.mu.Lock()
	inv, given, rearmed := a.cur, a.given, a.rearmed
	if inv != nil && !given {
		a.given = true
		if inv.FirstNext.IsZero() {
			inv.FirstNext = now
		}
	}
	a.mu.Unlock()
	if inv == nil || given {
		// Nothing to hand out: hold the poll, as Lambda freezes the sandbox.
		select {
		case <-r.Context().Done():
		case <-rearmed:
			w.WriteHeader(http.StatusGone)
		}
		return
	}
	deadline := inv.Deadline
	if deadline <= 0 {
		deadline = 15 * time.Minute
	}
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.RequestID)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(now.Add(deadline).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", a.FunctionARN)
	h.Set("Lambda-Runtime-Trace-Id", fmt.Sprintf("Root=1-%08x-%024x;Parent=%016x;Sampled=0", now.Unix(), now.UnixNano(), now.UnixNano()))
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.Event)
}

// ErrTimeout is returned by Wait when the function did not answer in time.
var ErrTimeout = errors.New("the function did not respond in time")

// Wait waits for inv to be done, or d to pass, or exited to be closed.
func (inv *Invocation) Wait(d time.Duration, exited <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-inv.done:
		return nil
	case <-exited:
		select {
		case <-inv.done:
			return nil
		default:
			return errors.New("the function exited before it responded")
		}
	case <-t.C:
		return ErrTimeout
	}
}
