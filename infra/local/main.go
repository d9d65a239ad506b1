// Command local runs the whole system on this machine with no AWS account:
// `make run` (go run ./infra/local). See README.md and package stack.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jitaccess/jit/infra/local/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, stop))
}

// run starts the stack, waits for ctx to end (Ctrl-C), stops it and returns
// the exit code. After the first signal, unhook calls restore the default
// handling, so a second Ctrl-C ends the process at once.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, unhook func()) int {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./infra/local [flags]   (make run ARGS='...')")
		fmt.Fprintln(stderr, "Starts moto_server, the resources, every function, the schedule dispatcher, the sweeper and the local gateway.")
		fs.PrintDefaults()
	}
	addr := fs.String("addr", stack.DefaultAddr, "gateway listen address (host:port)")
	motoPort := fs.Int("moto-port", 0, "moto_server port on 127.0.0.1 (0 picks a free one)")
	catalogPath := fs.String("catalog", stack.DefaultCatalogPath, "policy catalog file")
	fast := fs.Bool("fast-schedules", false, "dev: fire schedules at their exact second instead of within their minute as AWS does")
	poll := fs.Duration("poll", 0, "how often the dispatcher lists schedules (default 10s, or 1s with -fast-schedules)")
	sweep := fs.Duration("sweep-interval", stack.DefaultSweepInterval, "how often the sweeper runs (0 turns it off)")
	motoLog := fs.String("moto-log", "", "file to write moto_server's own output to (default: discarded)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "error: unexpected argument %q (flags start with -)\n", fs.Arg(0))
		return 2
	}

	opt := stack.Options{
		Addr: *addr, MotoPort: *motoPort, CatalogPath: *catalogPath, Poll: *poll,
		SweepInterval: *sweep, Log: stderr,
		Progress: func(step, detail string) { fmt.Fprintf(stdout, "  %-12s %s\n", step, detail) },
	}
	if *sweep <= 0 {
		opt.SweepInterval = -1
	}
	if *fast {
		opt.Precision = time.Second
	}
	if *motoLog != "" {
		f, err := os.Create(*motoLog)
		if err != nil {
			fmt.Fprintf(stderr, "error: -moto-log: %v\n", err)
			return 1
		}
		defer f.Close()
		opt.MotoLog = f
	}

	fmt.Fprintln(stdout, "jit local stack: starting (no AWS account needed)")
	started := time.Now()
	s, err := stack.Start(ctx, opt)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "interrupted while starting; stopped")
			return 130
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "error: "+line)
		}
		return 1
	}
	u := s.URL()
	fmt.Fprintf(stdout, "ready in %s\n", time.Since(started).Round(10*time.Millisecond))
	fmt.Fprintf(stdout, "  sign in      %s/signin\n", u)
	fmt.Fprintf(stdout, "  portal       %s/portal\n", u)
	fmt.Fprintf(stdout, "  mailbox      %s/mailbox\n", u)
	fmt.Fprintf(stdout, "  API          curl -H 'X-Dev-Identity: alice@example.com' %s/catalog\n", u)
	fmt.Fprintf(stdout, "  moto         %s\n", s.MotoURL())
	fmt.Fprintln(stdout, "State lives in moto's memory and is gone when this stops. Ctrl-C stops everything.")

	<-ctx.Done()
	if unhook != nil {
		unhook()
	}
	fmt.Fprintln(stdout, "stopping…")
	pid := s.MotoPID()
	s.Close()
	fmt.Fprintf(stdout, "stopped (gateway closed, dispatcher and sweeper ended, moto_server pid %d killed)\n", pid)
	return 0
}
