// Command jitbench is `make bench`: it measures cold starts, the AWS cost of
// one request lifecycle per approval mode, the sweeper's scaling, the API
// handlers' overhead and load, and revoke lag, all in one run on this
// machine, and writes docs/performance.md.
//
//	go run ./infra/bench/cmd/jitbench [-out docs/performance.md] [-parts cold,cost,sweep,handlers,load,lag]
//
// It needs moto_server on PATH and runs for a few minutes; nothing in it
// runs under go test.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jitaccess/jit/infra/bench"
	"github.com/jitaccess/jit/internal/awstest"
)

var allParts = []string{"cold", "cost", "sweep", "handlers", "load", "lag"}

type options struct {
	root, out   string
	parts       []string
	runs        int
	sweepSizes  []int
	sweepReps   int
	loadN, conc int
	approverN   int
	benchtime   string
	benchCount  int
	stackLoad   bool
	initReps    int
}

func main() {
	var o options
	var parts, sizes string
	flag.StringVar(&o.root, "root", ".", "the repository root")
	flag.StringVar(&o.out, "out", "docs/performance.md", "the report to write (relative to -root); - for stdout")
	flag.StringVar(&parts, "parts", strings.Join(allParts, ","), "parts to run")
	flag.IntVar(&o.runs, "runs", 15, "cold starts per function")
	flag.StringVar(&sizes, "sweep-sizes", "1000,20000", "ACTIVE requests that are not due, per sweeper measurement")
	flag.IntVar(&o.sweepReps, "sweep-reps", 3, "sweeps per size (each over 50 fresh due grants)")
	flag.IntVar(&o.loadN, "load", 2000, "requests per endpoint in the load test")
	flag.IntVar(&o.conc, "c", 8, "load test concurrency")
	flag.IntVar(&o.approverN, "approver-load", 20, "GET /requests by the approver of every pending request (sequential)")
	flag.StringVar(&o.benchtime, "benchtime", "1s", "go test -benchtime of the handler benchmarks")
	flag.IntVar(&o.benchCount, "bench-count", 5, "go test -count of the handler benchmarks (median kept)")
	flag.BoolVar(&o.stackLoad, "stack-load", false, "also run the load test through the local stack's gateway")
	flag.IntVar(&o.initReps, "init-reps", 20, "repetitions of each in-process init step")
	flag.Parse()
	o.parts = strings.Split(parts, ",")
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			fatal(fmt.Errorf("-sweep-sizes: %q is not a number", s))
		}
		o.sweepSizes = append(o.sweepSizes, n)
	}
	if _, err := os.Stat(filepath.Join(o.root, "go.mod")); err != nil {
		fatal(fmt.Errorf("run from the repository root (or pass -root): %w", err))
	}
	// Ctrl-C ends the run cleanly: the parts see the context end, moto_server is stopped.
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(sig, 15*time.Minute)
	defer cancel()
	r, failed := run(ctx, o)
	md := r.markdown()
	if o.out == "-" {
		fmt.Print(md)
	} else {
		path := o.out
		if !filepath.IsAbs(path) {
			path = filepath.Join(o.root, path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			fatal(err)
		}
		if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
			fatal(err)
		}
		logf("wrote %s", o.out)
	}
	fmt.Print(r.headline())
	if failed {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "jitbench:", err)
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "jitbench %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func median(xs []float64) float64 { return bench.Median(xs) }

func run(ctx context.Context, o options) (*report, bool) {
	r := &report{
		Date: time.Now().UTC(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Commit: gitCommit(o.root),
		OS: runtime.GOOS + "/" + runtime.GOARCH, CPUModel: cpuModel(), Moto: motoVersion(),
		Errors: map[string]string{}, Took: map[string]time.Duration{}, Opts: o,
	}
	start := time.Now()
	srv, err := awstest.Start()
	if err != nil {
		r.Errors["moto"] = err.Error()
		return r, true
	}
	defer srv.Stop()
	w := &world{srv: srv, raw: awsConfig(srv.URL), conf: benchConfig(srv.URL)}
	bench.SerializeTransactions(&w.raw)
	logf("moto_server at %s", srv.URL)

	step := func(name string, fn func() error) {
		if !slices.Contains(o.parts, name) {
			return
		}
		t0 := time.Now()
		logf("%s ...", name)
		if err := fn(); err != nil {
			r.Errors[name] = err.Error()
			logf("%s FAILED: %v", name, err)
		}
		r.Took[name] = time.Since(t0)
		logf("%s done in %s", name, r.Took[name].Round(time.Millisecond))
	}
	step("cold", func() (err error) {
		if r.Cold, err = coldStart(ctx, o.root, w, o.runs, logf); err != nil {
			return err
		}
		if r.InitSteps, err = initSteps(ctx, o.root, w, o.initReps); err != nil {
			return err
		}
		r.Regex, err = measureRegexCost(o.root, o.initReps)
		return err
	})
	step("cost", func() (err error) { r.Cost, err = lifecycles(ctx, w, logf); return err })
	step("sweep", func() (err error) { r.Sweep, err = sweeperScaling(ctx, w, o.sweepSizes, o.sweepReps, logf); return err })
	step("handlers", func() (err error) { r.Handlers, err = handlerBench(ctx, o.root, o.benchtime, o.benchCount); return err })
	step("load", func() (err error) {
		r.Load, err = apiLoad(ctx, w, o.loadN, o.conc, o.approverN, logf)
		return err
	})
	step("lag", func() (err error) {
		n := 0
		if o.stackLoad {
			n = o.loadN
		}
		var stackLoad []bench.LoadStats
		r.Lag, stackLoad, err = revokeLag(ctx, o.root, w, n, o.conc, logf)
		if r.Load != nil {
			r.Load.Stack = stackLoad
		}
		return err
	})
	r.Total = time.Since(start)
	return r, len(r.Errors) > 0
}

// motoVersion asks the Python behind moto_server.
func motoVersion() string {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return ""
	}
	py := "python3"
	if b, err := os.ReadFile(path); err == nil && strings.HasPrefix(string(b), "#!") {
		line, _, _ := strings.Cut(string(b[2:]), "\n")
		if f := strings.Fields(line); len(f) == 1 && !strings.HasSuffix(f[0], "/env") {
			py = f[0]
		}
	}
	out, err := exec.Command(py, "-c", "import moto; print(moto.__version__)").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// gitCommit is the short commit of root, "-dirty" with local changes.
func gitCommit(root string) string {
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	st := exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	st.Dir = root
	if b, err := st.Output(); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		c += "-dirty"
	}
	return c
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
