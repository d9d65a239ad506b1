// Command soak drives many full request lifecycles through the local stack
// while SDK middleware injects faults into the functions' AWS calls and some
// schedule deliveries are duplicated; then, with faults off and the sweeper
// run to completion, it checks the invariants, prints them and writes
// docs/reliability.md. It exits non-zero if an invariant breaks.
//
//	go run ./infra/soak [-lifecycles 1000] [-fault-rate 0.05] [-call-fault-rate 0.01] [-seed 1] [-concurrency 8] [-out docs/reliability.md]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/faults"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	def := DefaultConfig()
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := def
	fs.IntVar(&cfg.Lifecycles, "lifecycles", def.Lifecycles, "request lifecycles to drive")
	fs.Float64Var(&cfg.FaultRate, "fault-rate", def.FaultRate, "probability that an attempt of an IAM, Scheduler or DynamoDB call fails (the SDK retries it)")
	fs.Float64Var(&cfg.CallFaultRate, "call-fault-rate", def.CallFaultRate, "probability that such a call fails on every SDK attempt (the functions see it)")
	fs.IntVar(&cfg.CallFaultBurst, "call-fault-burst", def.CallFaultBurst, "after a per-call fault, how many following calls of the operation fail too (an outage)")
	fs.DurationVar(&cfg.CallFaultBurstFor, "call-fault-burst-for", def.CallFaultBurstFor, "the longest such an outage lasts")
	fs.DurationVar(&cfg.FaultDelay, "fault-delay", def.FaultDelay, "how long a timeout or a lost response takes")
	fs.Uint64Var(&cfg.Seed, "seed", def.Seed, "seed of the plans and the faults")
	fs.IntVar(&cfg.Concurrency, "concurrency", def.Concurrency, "HTTP clients at once")
	fs.IntVar(&cfg.Batch, "batch", def.Batch, "lifecycles per local stack (a fresh moto_server each)")
	fs.Float64Var(&cfg.DupRate, "dup-rate", def.DupRate, "share of schedule deliveries made twice")
	fs.IntVar(&cfg.SDKAttempts, "sdk-attempts", def.SDKAttempts, "SDK retryer attempts per call")
	kinds := fs.String("kinds", kindFlag(def.Kinds), "fault kinds: throttle, 500, timeout, lost (response lost; never into DynamoDB), fail (not retried by the SDK)")
	services := fs.String("services", strings.Join(def.Services, ","), "service ids faults are injected into")
	out := fs.String("out", "docs/reliability.md", "where to write the report (empty: nowhere)")
	logFile := fs.String("log", "", "file for the stack's logs (default: discarded)")
	moto := fs.String("moto", "", "moto_server binary (default: from PATH)")
	fs.DurationVar(&cfg.Timeout, "timeout", 15*time.Minute, "give up after this long (0: never)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Kinds = nil
	for _, k := range strings.Split(*kinds, ",") {
		kind, err := faults.ParseKind(k)
		if err != nil {
			fmt.Fprintln(stderr, "soak:", err)
			return 2
		}
		cfg.Kinds = append(cfg.Kinds, kind)
	}
	cfg.Services = nil
	for _, s := range strings.Split(*services, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Services = append(cfg.Services, s)
		}
	}
	cfg.MotoPath = *moto
	cfg.Progress = progressTo(stderr)
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			fmt.Fprintln(stderr, "soak:", err)
			return 2
		}
		defer f.Close()
		cfg.Log = f
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, cfg)
	if err != nil {
		if errors.Is(err, stack.ErrMotoMissing) {
			fmt.Fprintln(stderr, "soak:", stack.MotoInstallHint)
			return 2
		}
		fmt.Fprintln(stderr, "soak:", err)
		return 1
	}
	doc := res.Markdown()
	fmt.Fprint(stdout, summary(res))
	if *out != "" {
		if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
			fmt.Fprintln(stderr, "soak:", err)
			return 1
		}
		fmt.Fprintf(stderr, "soak: wrote %s\n", *out)
	}
	if !res.OK() {
		fmt.Fprintln(stderr, "soak: an invariant broke")
		return 1
	}
	return 0
}

// summary is what the run prints: the invariants and the headline counts.
func summary(r *Result) string {
	var b strings.Builder
	t := r.Total
	fmt.Fprintf(&b, "\nsoak: %d lifecycles, %d batches, %s\n\n", t.Lifecycles, r.Batches, r.Duration.Round(1e9))
	for _, name := range invariantOrder {
		inv := t.Invariants[name]
		if inv == nil {
			inv = &invariant{}
		}
		fmt.Fprintf(&b, "  %-4s %s (%d checked)\n", passFail(len(inv.Violations) == 0), name, inv.Checked)
		for i, v := range inv.Violations {
			if i == 5 {
				fmt.Fprintf(&b, "         ... %d more\n", len(inv.Violations)-5)
				break
			}
			fmt.Fprintf(&b, "         %s\n", v)
		}
	}
	fmt.Fprintf(&b, "\n  faults injected   %d (%s); %d calls faulted per call, %d outages\n", t.Faults.InjectedTotal(), kindCounts(t), t.Faults.CallFaultsTotal(), t.Faults.Bursts)
	fmt.Fprintf(&b, "  reached the app   %d calls (faults that outlasted the SDK's retries)\n", t.Faults.ExhaustedTotal())
	fmt.Fprintf(&b, "  retries           %d SDK, %.0f app, %d dispatcher redeliveries\n", t.Faults.Retries, t.Metrics["Retries"], t.Dispatch.Retried)
	fmt.Fprintf(&b, "  FAILED requests   %d\n", t.Statuses["FAILED"])
	fmt.Fprintf(&b, "  revoke-failed     %d records\n", t.RevokeFailedRecords)
	fmt.Fprintf(&b, "  sweeper           %d expiries, %d activations, %d time-outs\n", t.Sweep.Expired, t.Sweep.Activated, t.Sweep.TimedOut)
	fmt.Fprintf(&b, "  end-time revokes  %d by the sweeper, %d by the schedule\n", t.ExpiredBySweeper, t.ExpiredBySchedule)
	fmt.Fprintf(&b, "  duplicates        %d at once, %d in a row, %d stale\n", t.DupConcurrent, t.DupSequential, t.LateDups)
	fmt.Fprintf(&b, "  final states      %s\n\n", statusLine(t))
	return b.String()
}

func kindCounts(t *batchResult) string {
	var parts []string
	for _, k := range faults.Kinds {
		if n := t.Faults.InjectedByKind(k); n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	return strings.Join(parts, ", ")
}

func statusLine(t *batchResult) string {
	var parts []string
	for _, s := range terminal {
		parts = append(parts, fmt.Sprintf("%s %d", s, t.Statuses[s]))
	}
	return strings.Join(parts, ", ")
}
