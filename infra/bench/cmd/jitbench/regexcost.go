package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// regexCost is what the package-level regexp.MustCompile calls of this
// module's packages cost at init, measured in this process.
type regexCost struct {
	Patterns []regexPattern
	// Total is the sum of the patterns' median compile times; BoundedTotal
	// that of the patterns with a bounded repetition, which are the slow ones.
	Total, BoundedTotal time.Duration
	Bounds              []string // the bounded repetitions found, e.g. {1,128}
	BoundedPkgs         []string
	// Bounded and Unbounded compare one bounded pattern with the same
	// class unbounded (a length check would replace the bound).
	BoundedExpr, UnboundedExpr string
	Bounded, Unbounded         time.Duration
	Reps                       int
}

type regexPattern struct {
	Pkg, Expr string
	Median    time.Duration
	Bounded   bool // has a bounded repetition such as {1,128}
}

// regexPackages are the packages every function links that compile
// patterns at init.
var regexPackages = []string{"internal/catalog", "internal/iamgrant", "internal/schedule"}

var boundedRepeat = regexp.MustCompile(`\{\d*,\d+\}`)

// measureRegexCost finds the package-level regexp.MustCompile calls with a
// literal pattern in regexPackages (non-test files) and times compiling
// each, median of reps.
func measureRegexCost(root string, reps int) (*regexCost, error) {
	rc := &regexCost{Reps: reps}
	pkgs := map[string]bool{}
	for _, dir := range regexPackages {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, 0)
			if err != nil {
				return nil, err
			}
			for _, decl := range af.Decls {
				gd, ok := decl.(*ast.GenDecl)
				if !ok || gd.Tok != token.VAR {
					continue
				}
				ast.Inspect(gd, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok || len(call.Args) != 1 {
						return true
					}
					sel, ok := call.Fun.(*ast.SelectorExpr)
					if !ok || sel.Sel.Name != "MustCompile" {
						return true
					}
					if id, ok := sel.X.(*ast.Ident); !ok || id.Name != "regexp" {
						return true
					}
					lit, ok := call.Args[0].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						return true
					}
					expr, err := strconv.Unquote(lit.Value)
					if err != nil {
						return true
					}
					p := regexPattern{Pkg: dir, Expr: expr, Median: compileTime(expr, reps), Bounded: boundedRepeat.MatchString(expr)}
					rc.Patterns = append(rc.Patterns, p)
					rc.Total += p.Median
					if p.Bounded {
						pkgs[dir] = true
						rc.BoundedTotal += p.Median
						rc.Bounds = append(rc.Bounds, boundedRepeat.FindString(expr))
					}
					return true
				})
			}
		}
	}
	rc.BoundedPkgs = slices.Sorted(maps.Keys(pkgs))
	slices.Sort(rc.Bounds)
	rc.Bounds = slices.Compact(rc.Bounds)
	rc.BoundedExpr, rc.UnboundedExpr = `^[\w+=,.@-]{1,128}$`, `^[\w+=,.@-]+$`
	rc.Bounded, rc.Unbounded = compileTime(rc.BoundedExpr, reps), compileTime(rc.UnboundedExpr, reps)
	return rc, nil
}

func compileTime(expr string, reps int) time.Duration {
	xs := make([]float64, 0, reps)
	for range max(reps, 1) {
		t0 := time.Now()
		if _, err := regexp.Compile(expr); err != nil {
			return 0
		}
		xs = append(xs, float64(time.Since(t0)))
	}
	return time.Duration(median(xs))
}
