package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// goBench is one benchmark line of go test -bench.
type goBench struct {
	Name     string
	N        int
	NsPerOp  float64
	BPerOp   float64
	AllocsOp float64
}

type goBenchResult struct {
	Command string
	Benches []goBench
	Took    time.Duration
}

// BenchmarkIntakeGetCatalog-2   	   27424	     42379 ns/op	   16220 B/op	     136 allocs/op
var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+([0-9.]+) ns/op(?:\s+([0-9.]+) B/op)?(?:\s+([0-9.]+) allocs/op)?`)

func parseGoBench(out string) []goBench {
	var bs []goBench
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		b := goBench{Name: strings.TrimPrefix(m[1], "Benchmark")}
		b.N, _ = strconv.Atoi(m[2])
		b.NsPerOp, _ = strconv.ParseFloat(m[3], 64)
		b.BPerOp, _ = strconv.ParseFloat(m[4], 64)
		b.AllocsOp, _ = strconv.ParseFloat(m[5], 64)
		bs = append(bs, b)
	}
	return bs
}

// handlerBench runs the handler benchmarks of internal/api. count > 1
// repeats each and keeps the median ns/op.
func handlerBench(ctx context.Context, root string, benchtime string, count int) (*goBenchResult, error) {
	args := []string{"test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", benchtime, "-count", strconv.Itoa(count), "./internal/api"}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	res := &goBenchResult{Command: "go " + strings.Join(args, " "), Took: time.Since(t0)}
	if err != nil {
		return res, fmt.Errorf("%s: %v\n%s", res.Command, err, tail(string(out)))
	}
	all := parseGoBench(string(out))
	by := map[string][]goBench{}
	var order []string
	for _, b := range all {
		if _, ok := by[b.Name]; !ok {
			order = append(order, b.Name)
		}
		by[b.Name] = append(by[b.Name], b)
	}
	for _, name := range order {
		runs := by[name]
		ns := make([]float64, len(runs))
		for i, r := range runs {
			ns[i] = r.NsPerOp
		}
		med := runs[0]
		med.NsPerOp = median(ns)
		res.Benches = append(res.Benches, med)
	}
	if len(res.Benches) == 0 {
		return res, fmt.Errorf("%s printed no benchmark lines:\n%s", res.Command, tail(string(out)))
	}
	return res, nil
}
