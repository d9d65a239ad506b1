package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// LoadSamconfig reads the parameter_overrides of every environment's
// [<env>.deploy.parameters] section of a samconfig.toml: environment ->
// parameter -> value. Only the list form of parameter_overrides
// (["Name=value", ...], one entry a line) is understood; anything else is an
// error, so the tests never check a file they misread.
func LoadSamconfig(path string) (map[string]map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseSamconfig(data)
}

var (
	samSection = regexp.MustCompile(`^\[([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.parameters\]\s*$`)
	samQuoted  = regexp.MustCompile(`^"([^"\\]*)",?\s*(#.*)?$`)
)

// ParseSamconfig is LoadSamconfig on the file's content.
func ParseSamconfig(data []byte) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	env, inDeploy, inList := "", false, false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case inList:
			if line == "]" {
				inList = false
				continue
			}
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			m := samQuoted.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: want one \"Name=value\" a line, got %q", n, line)
			}
			name, value, ok := strings.Cut(m[1], "=")
			if !ok {
				return nil, fmt.Errorf("line %d: %q is not Name=value", n, m[1])
			}
			out[env][name] = value
		case strings.HasPrefix(line, "["):
			m := samSection.FindStringSubmatch(line)
			if m == nil {
				return nil, fmt.Errorf("line %d: unexpected section %q", n, line)
			}
			env, inDeploy = m[1], m[2] == "deploy"
		case inDeploy && strings.HasPrefix(line, "parameter_overrides"):
			if !strings.HasSuffix(line, "[") {
				return nil, fmt.Errorf("line %d: write parameter_overrides as a list, one \"Name=value\" a line", n)
			}
			inList = true
			if out[env] == nil {
				out[env] = map[string]string{}
			}
		}
	}
	if inList {
		return nil, fmt.Errorf("parameter_overrides of %s is not closed", env)
	}
	return out, sc.Err()
}
