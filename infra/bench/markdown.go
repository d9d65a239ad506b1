package bench

import (
	"fmt"
	"math"
	"strings"
)

// Table renders a GitHub-flavoured markdown table; columns whose header
// starts with '>' are right-aligned (the '>' is dropped).
func Table(header []string, rows [][]string) string {
	var b strings.Builder
	align := make([]string, len(header))
	b.WriteString("|")
	for i, h := range header {
		align[i] = "---"
		if strings.HasPrefix(h, ">") {
			h, align[i] = h[1:], "--:"
		}
		b.WriteString(" " + h + " |")
	}
	b.WriteString("\n|")
	for _, a := range align {
		b.WriteString(" " + a + " |")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("|")
		for i := range header {
			c := ""
			if i < len(r) {
				c = strings.ReplaceAll(r[i], "|", `\|`)
			}
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// F formats x with the given decimals; NaN and infinities as "n/a".
func F(x float64, decimals int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.*f", decimals, x)
}

// Dollars formats an amount in US dollars with enough digits for small sums.
func Dollars(x float64) string {
	switch {
	case x == 0:
		return "$0"
	case x >= 1:
		return fmt.Sprintf("$%.2f", x)
	case x >= 0.01:
		return fmt.Sprintf("$%.4f", x)
	default:
		return fmt.Sprintf("$%.6f", x)
	}
}

// MB formats a byte count in MiB.
func MB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
