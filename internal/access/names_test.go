package access

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestIsIAMNameMatchesIAMsPattern: the loop accepts exactly what IAM's
// pattern [\w+=,.@-]{1,max} does, on edge cases and random strings.
func TestIsIAMNameMatchesIAMsPattern(t *testing.T) {
	re := regexp.MustCompile(`^[\w+=,.@-]{1,16}$`)
	cases := []string{"", "a", "A_b+c=d,e.f@g-h", strings.Repeat("x", 16), strings.Repeat("x", 17), "a b", "a/b", "é", "a\n", "ok*"}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ09_+=,.@-/ *é\x00"
	for range 2000 {
		n := rng.IntN(20)
		var b strings.Builder
		for range n {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		assert.Equal(t, re.MatchString(s), IsIAMName(s, 16), "%q", s)
	}
}
