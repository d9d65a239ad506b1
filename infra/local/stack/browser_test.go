package stack_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/awstest"
)

const chromiumHint = "chromium not found: install it with apt-get install -y chromium (.ci/check-tools.sh does in CI)"

// chromium finds Debian's chromium; without it the test skips, or fails in CI.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if awstest.InCI() {
		t.Fatalf("%s (CI=true: tests must not skip)", chromiumHint)
	}
	t.Skip(chromiumHint)
	return ""
}

// TestBrowserApprovalFlow is the whole flow in headless Chromium, as people
// use it: alice signs in and requests a role in the portal, carol opens her
// mailbox, follows the approval link and presses Approve, and alice sees
// the request ACTIVE in the portal.
func TestBrowserApprovalFlow(t *testing.T) {
	path := chromium(t)
	s := start(t, stack.Options{Catalog: mustParse(t, e2eCatalog), Precision: time.Second, Poll: 100 * time.Millisecond})

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	shots := t.TempDir()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100 means PNG
		require.NoError(t, err, "screenshot %s", name)
		file := filepath.Join(shots, name)
		require.NoError(t, os.WriteFile(file, png, 0o644))
		t.Logf("screenshot: %s", file)
		if dir := os.Getenv("JIT_SCREENSHOT_DIR"); dir != "" { // keep them past the test
			_ = os.MkdirAll(dir, 0o755)
			_ = os.WriteFile(filepath.Join(dir, name), png, 0o644)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, "text of %s", sel)
		return strings.TrimSpace(v)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, steps...), what)
	}
	// open clicks what leads to another page and waits until it has loaded.
	open := func(sel string) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		resp, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.CSS(sel)))
		require.NoError(t, err, "click %s", sel)
		require.Less(t, resp.Status, int64(400), "click %s: %s %d", sel, resp.URL, resp.Status)
	}
	signIn := func(identity string) {
		t.Helper()
		do("open the sign-in page", chromedp.Navigate(s.URL()+"/signin"))
		open(`button[value="` + identity + `"]`)
		require.Equal(t, identity, text("#identity"))
	}

	// alice asks for group-admin in the portal.
	do("open the sign-in page", chromedp.Navigate(s.URL()+"/signin"))
	shot("0-signin.png")
	signIn("alice@example.com")
	do("fill in the request form",
		chromedp.WaitVisible(chromedp.CSS(`#roleId`)),
		chromedp.SetValue(chromedp.CSS(`#roleId`), "group-admin"),
		chromedp.SendKeys(chromedp.CSS(`#duration`), "2h"),
		chromedp.SendKeys(chromedp.CSS(`#justification`), "Fix the failing deploy from the browser test"),
	)
	open(`form[action="/portal/requests"] button[type="submit"]`)
	assert.Contains(t, text(".flash.ok"), "Requested group-admin for 2h: it is PENDING.")
	shot("1-portal-requested.png")

	// carol reads her mail and follows the approval link.
	signIn("carol@example.com")
	assert.Contains(t, text("#await-h"), "Awaiting my approval 1")
	shot("2-approver-portal.png")
	// Keyboard: Enter in the comment box is a new line, never an Approve.
	do("type a comment and press Enter",
		chromedp.SendKeys(chromedp.CSS(`form.decide textarea[name="comment"]`), "Not during the freeze\r"),
		chromedp.Sleep(300*time.Millisecond),
	)
	signIn("carol@example.com")
	assert.Contains(t, text("#await-h"), "Awaiting my approval 1", "pressing Enter decided nothing")
	open(`a[href="/mailbox"]`)
	open(`a[href^="/mailbox?to="]`) // "mail to carol@example.com"
	assert.Contains(t, text("main h2"), "Approval needed: alice@example.com requests group-admin")
	shot("3-mailbox.png")
	open(`a.mail-link[href*="/approvals/"]`)
	assert.Equal(t, "Approve access?", text("h1"))
	shot("4-approval-page.png")
	open(`button[value="approve"]`)
	assert.Equal(t, "Decision recorded", text("h1"))
	assert.Equal(t, "You approved this request. It is now ACTIVE.", text("p.msg"))

	// alice sees it ACTIVE.
	signIn("alice@example.com")
	do("see it active", chromedp.WaitVisible(chromedp.CSS(`#mine .s-active`)))
	mine := text("#mine")
	shot("5-portal-active.png")
	assert.Contains(t, mine, "ACTIVE")
	assert.Contains(t, mine, "I'm done")
	assert.True(t, strings.Contains(mine, "2h left") || strings.Contains(mine, "1h 59m left"), mine)

	// "I'm done" from the request's page, then its audit trail.
	open(`#mine a[href^="/portal/requests/"]`)
	open(`form[action$="/revoke"] button`)
	assert.Contains(t, text(".flash.ok"), "it is now REVOKED.")
	assert.Contains(t, text("#verify"), "Hash chain verifies: 4 records")
	shot("6-request-audit.png")
	t.Logf("screenshots in %s", shots)
}
