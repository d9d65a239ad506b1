package stack_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/access"
)

// TestEndToEndInRealTime is the walkthrough as `make run -fast-schedules`
// runs it, on the wall clock: a one-minute grant (the shortest there is) of
// a time-boxed inline policy, approved from the email link, is revoked by
// its schedule when the minute is up, without the sweeper. About 65 s.
func TestEndToEndInRealTime(t *testing.T) {
	requireMoto(t)
	s := start(t, stack.Options{
		Catalog: mustParse(t, e2eCatalog), Precision: time.Second, Poll: 250 * time.Millisecond, SweepInterval: -1,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	iamClient := iam.NewFromConfig(s.AWSConfig())
	bob := newClient(t, s, "bob@example.com")
	anonymous := newClient(t, s, "")

	var req stack.Request
	require.Equal(t, http.StatusCreated, bob.json(http.MethodPost, "/requests", map[string]string{
		"roleId": "timeboxed", "duration": "1m", "justification": "a one-minute grant, in real time",
	}, &req))
	var link string
	for _, m := range sent(t, s) {
		if slices.Contains(m.To, "carol@example.com") && strings.HasPrefix(m.Subject, "Approval needed") {
			link = approvalLink.FindString(m.Body)
		}
	}
	require.NotEmpty(t, link)
	code, page := anonymous.form(link, url.Values{"decision": {"approve"}})
	require.Equal(t, http.StatusOK, code, page)
	active := bob.request(req.ID)
	require.Equal(t, access.StatusActive, active.Status)
	require.True(t, inlinePolicy(ctx, t, iamClient, active), "granted in IAM")

	require.Eventually(t, func() bool { return bob.request(req.ID).Status == access.StatusExpired },
		2*time.Minute, 250*time.Millisecond, "the revoke schedule fires when the minute is up")
	expired := time.Now()
	assert.False(t, inlinePolicy(ctx, t, iamClient, active), "the inline policy is gone from IAM")
	t.Logf("end time %s, seen EXPIRED at %s (%.1fs after)", active.EndAt.Format(time.RFC3339), expired.UTC().Format(time.RFC3339Nano),
		expired.Sub(active.EndAt).Seconds())

	var trail stack.Trail
	require.Equal(t, http.StatusOK, bob.json(http.MethodGet, "/requests/"+req.ID+"/audit", nil, &trail))
	assert.True(t, trail.Verified, trail.VerifyError)
	last := trail.Records[len(trail.Records)-1]
	assert.Equal(t, "system:revoke", last.Actor, "by the schedule (the sweeper is off)")
	assert.False(t, last.At.Before(active.EndAt.Add(-time.Second)), "not before the end time: %s", last.At)
	require.NoError(t, s.Store().VerifyAudit(ctx, req.ID))
}
