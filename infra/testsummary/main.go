// Command testsummary reads `go test -json` on stdin, prints what plain
// `go test` would (package lines, and the output of failing tests), then a
// summary: tests passed, failed and skipped, how many ran against moto, and
// every skip with its reason. With CI=true a skip caused by a missing tool
// (moto_server, chromium, cfn-lint) fails the run: CI must never pass by skipping.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/jitaccess/jit/internal/awstest"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type testKey struct{ pkg, test string }

func main() {
	os.Exit(run(os.Stdin, os.Stdout, awstest.InCI()))
}

func run(in io.Reader, out io.Writer, ci bool) int {
	output := map[testKey]*strings.Builder{}
	var passed, failed, skipped, moto int
	motoTests := map[testKey]bool{}
	var skips, failures []string
	pkgFailed := false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(out, sc.Text()) // build errors and the like are not JSON
			continue
		}
		k := testKey{e.Package, e.Test}
		switch e.Action {
		case "output":
			if output[k] == nil {
				output[k] = &strings.Builder{}
			}
			output[k].WriteString(e.Output)
			if e.Test != "" && strings.Contains(e.Output, "awstest: moto_server at") {
				motoTests[k] = true
			}
		case "pass", "fail", "skip":
			if e.Test == "" { // the package line
				if e.Action == "fail" {
					pkgFailed = true
					if b := output[k]; b != nil {
						fmt.Fprint(out, b.String())
					}
				}
				fmt.Fprintf(out, "%-4s %s (%.1fs)\n", strings.ToUpper(e.Action), e.Package, e.Elapsed)
				continue
			}
			if strings.Contains(e.Test, "/") { // count top-level tests only
				continue
			}
			switch e.Action {
			case "pass":
				passed++
				if motoTests[k] || subtestsUsedMoto(motoTests, k) {
					moto++
				}
			case "fail":
				failed++
				failures = append(failures, e.Package+" "+e.Test)
				if b := output[k]; b != nil {
					fmt.Fprint(out, b.String())
				}
			case "skip":
				skipped++
				reason := lastLine(output[k])
				skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
			}
		}
	}
	sort.Strings(skips)
	fmt.Fprintf(out, "\ntests: %d passed, %d failed, %d skipped; %d ran against a real moto_server\n", passed, failed, skipped, moto)
	toolSkip := false
	for _, s := range skips {
		fmt.Fprintln(out, "skipped:", s)
		if strings.Contains(s, "moto_server") || strings.Contains(s, "chromium") || strings.Contains(s, "cfn-lint") {
			toolSkip = true
		}
	}
	for _, f := range failures {
		fmt.Fprintln(out, "failed:", f)
	}
	if ci && toolSkip {
		fmt.Fprintln(out, "error: CI=true and tests skipped for a missing tool")
		return 1
	}
	if ci && moto == 0 {
		fmt.Fprintln(out, "error: CI=true and no test ran against moto_server")
		return 1
	}
	if failed > 0 || pkgFailed {
		return 1
	}
	return 0
}

func subtestsUsedMoto(m map[testKey]bool, parent testKey) bool {
	for k := range m {
		if k.pkg == parent.pkg && strings.HasPrefix(k.test, parent.test+"/") {
			return true
		}
	}
	return false
}

func lastLine(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "--- SKIP") {
			return l
		}
	}
	return ""
}
