package deploy

import (
	"bufio"
	"bytes"
	"os"
	"regexp"
	"strings"
)

// Makefile is the little of a Makefile the agreement tests need: its
// variables and its rules' recipes.
type Makefile struct {
	Vars  map[string]string
	Rules map[string][]string // target (possibly a % pattern) -> recipe lines
}

// LoadMakefile reads and parses a Makefile.
func LoadMakefile(path string) (Makefile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Makefile{}, err
	}
	return ParseMakefile(data), nil
}

var (
	assignment = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*(:=|\?=|=|::=)\s*(.*)$`)
	ruleLine   = regexp.MustCompile(`^([^:=#\t][^:=#]*?)\s*:([^=].*)?$`)
)

// ParseMakefile reads variables (NAME := value, ?=, =) and rules with their
// tab-indented recipes. Continuation lines are joined; conditionals and
// functions other than $(VAR) are not interpreted.
func ParseMakefile(data []byte) Makefile {
	m := Makefile{Vars: map[string]string{}, Rules: map[string][]string{}}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	var cont strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(line, `\`) {
			cont.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cont.WriteString(line)
		lines = append(lines, cont.String())
		cont.Reset()
	}
	var current []string
	for _, line := range lines {
		if strings.HasPrefix(line, "\t") {
			for _, t := range current {
				m.Rules[t] = append(m.Rules[t], strings.TrimSpace(line))
			}
			continue
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if a := assignment.FindStringSubmatch(line); a != nil {
			if _, set := m.Vars[a[1]]; a[2] != "?=" || !set {
				m.Vars[a[1]] = strings.TrimSpace(a[3])
			}
			current = nil
			continue
		}
		if r := ruleLine.FindStringSubmatch(line); r != nil {
			current = strings.Fields(r[1])
			for _, t := range current {
				if _, ok := m.Rules[t]; !ok {
					m.Rules[t] = nil
				}
			}
			continue
		}
		current = nil
	}
	return m
}

// Rule finds the rule that makes target: an explicit rule, or a pattern
// rule whose % matches. It returns the rule's name, the stem the % matched
// ("" for an explicit rule) and the recipe.
func (m Makefile) Rule(target string) (name, stem string, recipe []string, ok bool) {
	if r, found := m.Rules[target]; found {
		return target, "", r, true
	}
	for name, r := range m.Rules {
		prefix, suffix, isPattern := strings.Cut(name, "%")
		if isPattern && len(target) > len(prefix)+len(suffix) &&
			strings.HasPrefix(target, prefix) && strings.HasSuffix(target, suffix) {
			return name, target[len(prefix) : len(target)-len(suffix)], r, true
		}
	}
	return "", "", nil, false
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// Expand substitutes the Makefile's own variables ($(NAME)) in s, leaving
// unknown ones (such as ARTIFACTS_DIR, set by sam build) as they are.
func (m Makefile) Expand(s string) string {
	for range 10 {
		next := varRef.ReplaceAllStringFunc(s, func(ref string) string {
			if v, ok := m.Vars[ref[2:len(ref)-1]]; ok {
				return v
			}
			return ref
		})
		if next == s {
			break
		}
		s = next
	}
	return s
}
