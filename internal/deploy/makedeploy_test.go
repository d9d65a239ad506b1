package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeDeploy runs `make deploy` with a PATH holding only the given fake
// tools (each a shell script), and returns its output, whether it
// succeeded, and what the fake tools were called with.
func makeDeploy(t *testing.T, tools map[string]string, args ...string) (string, bool, string) {
	t.Helper()
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not installed")
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	for name, body := range tools {
		script := "#!/bin/bash\necho \"" + name + " $*\" >> " + calls + "\n" + body + "\n"
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755))
	}
	abs, err := filepath.Abs(root)
	require.NoError(t, err)
	cmd := exec.Command(mk, append([]string{"-s", "-C", abs, "deploy"}, args...)...)
	cmd.Env = []string{"PATH=" + dir, "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	got, _ := os.ReadFile(calls)
	return string(out), err == nil, string(got)
}

func TestMakeDeployChecksItsTools(t *testing.T) {
	t.Run("no SAM CLI", func(t *testing.T) {
		out, ok, calls := makeDeploy(t, map[string]string{"aws": "exit 0"})
		assert.False(t, ok)
		assert.Contains(t, out, "AWS SAM CLI")
		assert.NotContains(t, out, "credentials")
		assert.Empty(t, calls)
	})
	t.Run("no AWS CLI", func(t *testing.T) {
		out, ok, calls := makeDeploy(t, map[string]string{"sam": "exit 0"})
		assert.True(t, ok, out)
		assert.Contains(t, out, "AWS CLI is not installed")
		assert.NotContains(t, out, "needs AWS credentials:", "a missing CLI is not missing credentials")
		assert.Equal(t, "sam build\nsam deploy\n", calls)
	})
	t.Run("no credentials", func(t *testing.T) {
		out, ok, calls := makeDeploy(t, map[string]string{"sam": "exit 0", "aws": "exit 255"})
		assert.False(t, ok)
		assert.Contains(t, out, "needs AWS credentials")
		assert.False(t, strings.Contains(calls, "sam "), "nothing is built or deployed: %s", calls)
	})
	t.Run("ready", func(t *testing.T) {
		out, ok, calls := makeDeploy(t, map[string]string{"sam": "exit 0", "aws": "exit 0"}, "ENV=dev")
		assert.True(t, ok, out)
		assert.Equal(t, "aws sts get-caller-identity\nsam build\nsam deploy --config-env dev\n", calls)
	})
}
