package schedule

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestNamesMatchSchedulersPattern: the loop accepts exactly what the
// Scheduler's name pattern [0-9A-Za-z_.-]{1,64} does.
func TestNamesMatchSchedulersPattern(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-Za-z_.-]{1,64}$`)
	cases := []string{"", "revoke-01ABC", strings.Repeat("x", 64), strings.Repeat("x", 65), "a b", "a/b", "é", "a+b"}
	rng := rand.New(rand.NewPCG(3, 4))
	const alphabet = "aZ09_.-/ +é\x00"
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(70) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		cases = append(cases, b.String())
	}
	for _, s := range cases {
		assert.Equal(t, re.MatchString(s), validName(s), "%q", s)
	}
}
