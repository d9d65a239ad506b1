package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jitaccess/jit/infra/bench"
	"github.com/jitaccess/jit/internal/config"
)

// lambdaFlags are the build flags of the real functions (Makefile LAMBDA_FLAGS).
var lambdaFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w"}

const (
	hello = "hello"
	// lean is the experiment of the findings: intake without
	// config.LoadDefaultConfig (infra/bench/variants/intake-lean).
	lean = "intake-lean"
)

// coldFunction is one binary under test.
type coldFunction struct {
	Name    string
	Pkg     string
	Event   []byte
	Env     []string
	HostBin string

	SizeArm64, SizeHost int64
	Init, First         []time.Duration // exec to first GET next; exec to first response
	Outcomes            map[string]int
	LastBody            string
	Failures            []string
	InitTrace           []pkgInit
	InitTraceTotal      time.Duration
}

type pkgInit struct {
	Pkg   string
	Clock time.Duration
}

// coldResult is part 1.
type coldResult struct {
	Runs      int
	Functions []*coldFunction
	BuildTime time.Duration
	Arch      string
}

func (r *coldResult) hello() *coldFunction {
	for _, f := range r.Functions {
		if f.Name == hello {
			return f
		}
	}
	return nil
}

// build compiles pkgs into dir with the Lambda flags for goos/goarch.
func build(ctx context.Context, root, dir, goos, goarch string, pkgs []string) error {
	args := append([]string{"build"}, lambdaFlags...)
	args = append(args, "-o", dir+string(os.PathSeparator))
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s/%s: %v\n%s", goos, goarch, err, out)
	}
	return nil
}

func coldStart(ctx context.Context, root string, w *world, runs int, logf func(string, ...any)) (*coldResult, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("the cold-start benchmark runs Lambda bootstraps and needs linux, not %s", runtime.GOOS)
	}
	tmp, err := os.MkdirTemp("", "jitbench-cold-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	res := &coldResult{Runs: runs, Arch: runtime.GOARCH}

	var fns []*coldFunction
	for _, fn := range config.Functions {
		fns = append(fns, &coldFunction{Name: fn, Pkg: "./functions/" + fn})
	}
	fns = append(fns, &coldFunction{Name: lean, Pkg: "./infra/bench/variants/intake-lean"}, &coldFunction{Name: hello, Pkg: "./infra/bench/hello"})
	var pkgs []string
	for _, f := range fns {
		pkgs = append(pkgs, f.Pkg)
	}
	start := time.Now()
	hostDir, armDir := filepath.Join(tmp, "host"), filepath.Join(tmp, "arm64")
	if err := build(ctx, root, hostDir, "linux", runtime.GOARCH, pkgs); err != nil {
		return nil, err
	}
	if err := build(ctx, root, armDir, "linux", "arm64", pkgs); err != nil {
		return nil, err
	}
	res.BuildTime = time.Since(start)
	logf("cold start: built %d functions for linux/%s and linux/arm64 in %s", len(fns), runtime.GOARCH, res.BuildTime.Round(time.Second))

	// The function's directory: the catalog next to the bootstrap, as in the zip.
	work := filepath.Join(tmp, "task")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	cat, err := os.ReadFile(filepath.Join(root, "infra", "catalog.example.yaml"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(work, "catalog.yaml"), cat, 0o644); err != nil {
		return nil, err
	}

	if err := w.reset(ctx, nil); err != nil {
		return nil, err
	}

	env := w.conf.Env()
	for _, f := range fns {
		f.Outcomes = map[string]int{}
		f.HostBin = filepath.Join(hostDir, filepath.Base(f.Pkg))
		st, err := os.Stat(f.HostBin)
		if err != nil {
			return nil, err
		}
		f.SizeHost = st.Size()
		if st, err = os.Stat(filepath.Join(armDir, filepath.Base(f.Pkg))); err != nil {
			return nil, err
		}
		f.SizeArm64 = st.Size()
		f.Env = []string{
			"AWS_LAMBDA_FUNCTION_NAME=jit-" + f.Name,
			"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
			"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128",
			"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/jit-" + f.Name,
			"AWS_LAMBDA_LOG_STREAM_NAME=bench",
			"_HANDLER=bootstrap",
			"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing", "AWS_SESSION_TOKEN=testing",
			"AWS_EC2_METADATA_DISABLED=true",
			"HOME=" + work, "TZ=UTC", "PATH=/usr/bin:/bin",
			"AWS_ENDPOINT_URL=" + w.conf.AWSEndpoint,
		}
		fn := f.Name
		if fn == lean {
			fn = config.Intake
		}
		if req, ok := config.Required[fn]; ok {
			for _, name := range req {
				f.Env = append(f.Env, name+"="+env[name])
			}
			f.Env = append(f.Env, "CATALOG_FILE=catalog.yaml")
		}
		switch fn {
		case config.Intake:
			f.Event, err = os.ReadFile(filepath.Join(root, "events", "intake-get-catalog.json"))
		case config.Approve:
			f.Event, err = os.ReadFile(filepath.Join(root, "events", "approve-post-forged.json"))
		case config.Grant, config.Revoke:
			f.Event = fmt.Appendf(nil, `{"action":%q,"requestId":"01BENCHNOSUCHREQUEST000000"}`, fn)
		default:
			f.Event = []byte(`{}`)
		}
		if err != nil {
			return nil, err
		}
	}
	res.Functions = fns

	// One discarded run each: page cache, moto's lazy service backends.
	for _, f := range fns {
		if _, _, err := runOnce(f, work, nil); err != nil {
			return nil, fmt.Errorf("%s: warm-up run: %w", f.Name, err)
		}
	}
	// Interleaved rounds, each in a rotated order.
	for r := range runs {
		for i := range fns {
			f := fns[(i+r)%len(fns)]
			init, first, err := runOnce(f, work, nil)
			if err != nil {
				f.Failures = append(f.Failures, err.Error())
				continue
			}
			f.Init = append(f.Init, init)
			f.First = append(f.First, first)
		}
	}
	// Package initialisation, from the runtime's own trace: per package
	// the median over a few runs, interleaved like the rest.
	traces := map[*coldFunction][]string{}
	for range initTraceRuns {
		for _, f := range fns {
			var stderr bytes.Buffer
			if _, _, err := runOnce(f, work, &stderr, "GODEBUG=inittrace=1"); err == nil {
				traces[f] = append(traces[f], stderr.String())
			}
		}
	}
	for _, f := range fns {
		f.InitTrace, f.InitTraceTotal = medianInitTrace(traces[f])
	}
	logf("cold start: %d runs of each of %d binaries", runs, len(fns))
	return res, nil
}

// initTraceRuns is how many GODEBUG=inittrace=1 runs each binary gets.
const initTraceRuns = 5

// runOnce starts f's binary against a runtime API of its own (a fresh one
// per run, so that no poll of a previous process can take this run's
// event) with one armed event, waits for its first response and stops it.
func runOnce(f *coldFunction, dir string, stderr *bytes.Buffer, extraEnv ...string) (init, first time.Duration, err error) {
	api := &bench.RuntimeAPI{FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:jit-" + f.Name}
	if err := api.Start(); err != nil {
		return 0, 0, err
	}
	defer api.Close()
	inv := &bench.Invocation{RequestID: fmt.Sprintf("bench-%d", time.Now().UnixNano()), Event: f.Event, Deadline: 30 * time.Second}
	api.Arm(inv)
	cmd := exec.Command(f.HostBin)
	cmd.Dir = dir
	cmd.Env = append(append(slices.Clone(f.Env), "AWS_LAMBDA_RUNTIME_API="+api.Addr()), extraEnv...)
	var stdout, errBuf bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &errBuf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	werr := inv.Wait(20*time.Second, exited)
	_ = cmd.Process.Kill()
	<-exited
	if stderr != nil {
		stderr.Write(errBuf.Bytes())
	}
	if werr != nil {
		return 0, 0, fmt.Errorf("%w; stdout: %s; stderr: %s", werr, tail(stdout.String()), tail(errBuf.String()))
	}
	f.Outcomes[inv.Outcome]++
	f.LastBody = string(inv.Body)
	if inv.FirstNext.IsZero() {
		return 0, 0, fmt.Errorf("%s before asking for an event: %s", inv.Outcome, inv.Body)
	}
	return inv.FirstNext.Sub(t0), inv.Responded.Sub(t0), nil
}

func tail(s string) string {
	if len(s) > 600 {
		return "..." + s[len(s)-600:]
	}
	return s
}

// init internal/bytealg @0.008 ms, 0.004 ms clock, 0 bytes, 0 allocs
var initLine = regexp.MustCompile(`^init (\S+) @[0-9.]+ ms, ([0-9.]+) ms clock`)

// medianInitTrace merges several traces: each package's median clock time
// (over the runs that list it), sorted slowest first, and their sum.
func medianInitTrace(runs []string) ([]pkgInit, time.Duration) {
	by := map[string][]float64{}
	for _, r := range runs {
		pkgs, _ := parseInitTrace(r)
		for _, p := range pkgs {
			by[p.Pkg] = append(by[p.Pkg], float64(p.Clock))
		}
	}
	var out []pkgInit
	var total time.Duration
	for pkg, xs := range by {
		d := time.Duration(bench.Median(xs))
		out = append(out, pkgInit{Pkg: pkg, Clock: d})
		total += d
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Clock != out[j].Clock {
			return out[i].Clock > out[j].Clock
		}
		return out[i].Pkg < out[j].Pkg
	})
	return out, total
}

func parseInitTrace(s string) ([]pkgInit, time.Duration) {
	var out []pkgInit
	var total time.Duration
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		m := initLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ms, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		d := time.Duration(ms * float64(time.Millisecond))
		total += d
		out = append(out, pkgInit{Pkg: m[1], Clock: d})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Clock > out[j].Clock })
	return out, total
}
