package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/api"
)

// The approval routes the docs describe are the ones the template has.
func TestDocsNameTheApprovalRoutes(t *testing.T) {
	var methods []string
	for _, r := range api.ApprovalRoutes {
		m, path, _ := strings.Cut(r, " ")
		require.Equal(t, "/approvals/{token}", path)
		methods = append(methods, "`"+m+"`")
	}
	want := strings.Join(methods, "/") + " /approvals/{token}`"
	want = strings.Replace(want, "` /approvals", " /approvals", 1)
	for _, doc := range []string{"security.md", "deploy.md"} {
		b, err := os.ReadFile(filepath.Join(root, "docs", doc))
		require.NoError(t, err)
		assert.True(t, strings.Contains(string(b), want), "docs/%s names every approval route: %s", doc, want)
		assert.False(t, strings.Contains(string(b), "`HEAD` gets 404"), "docs/%s: HEAD reaches the approve function", doc)
	}
}
