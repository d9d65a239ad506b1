package catalog

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestIsIDMatchesItsPattern: the loop accepts exactly what
// ^[a-z0-9][a-z0-9-]{0,62}$ does.
func TestIsIDMatchesItsPattern(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	cases := []string{"", "-a", "a-", "prod-admin", strings.Repeat("a", 63), strings.Repeat("a", 64), "A", "a_b"}
	rng := rand.New(rand.NewPCG(5, 6))
	const alphabet = "az09-A_ é"
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(70) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		assert.Equal(t, re.MatchString(s), isID(s), "%q", s)
	}
}
