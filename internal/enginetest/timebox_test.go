package enginetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/iamgrant"
)

// TestTimeboxedPolicyInMoto reads the inline policy back from moto: every
// statement carries DateLessThan aws:CurrentTime <end>, and the conditions
// the catalog wrote are kept.
func TestTimeboxedPolicyInMoto(t *testing.T) {
	for _, c := range []struct {
		name, identity string
		principal      access.Principal
	}{
		{"user", alice, user("alice")},
		{"role", erin, role("erin-ops")},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.submit(c.identity, "reports-timeboxed", app.SubmitInput{Duration: 45*time.Minute + 30*time.Second})
			require.Equal(t, access.StatusActive, r.Status)

			name := aws.String(iamgrant.PolicyName(r.ID))
			var raw string
			if c.principal.Kind == access.PrincipalRole {
				out, err := e.iam.GetRolePolicy(e.ctx, &iam.GetRolePolicyInput{RoleName: aws.String(c.principal.Name), PolicyName: name})
				require.NoError(t, err)
				raw = aws.ToString(out.PolicyDocument)
			} else {
				out, err := e.iam.GetUserPolicy(e.ctx, &iam.GetUserPolicyInput{UserName: aws.String(c.principal.Name), PolicyName: name})
				require.NoError(t, err)
				raw = aws.ToString(out.PolicyDocument)
			}
			doc, err := url.QueryUnescape(raw) // IAM returns policy documents URL-encoded
			require.NoError(t, err)

			var policy struct {
				Statement []struct {
					Sid       string
					Condition map[string]map[string]any
				}
			}
			require.NoError(t, json.Unmarshal([]byte(doc), &policy), doc)
			require.Len(t, policy.Statement, 2)
			want := r.EndAt.Truncate(time.Second).Format("2006-01-02T15:04:05Z")
			assert.Equal(t, "2030-01-02T09:45:30Z", want)
			for _, st := range policy.Statement {
				assert.Equal(t, want, st.Condition["DateLessThan"]["aws:CurrentTime"], "statement %s", st.Sid)
			}
			assert.Equal(t, "true", policy.Statement[1].Condition["Bool"]["aws:SecureTransport"], "existing conditions are kept")

			e.clock.Set(r.EndAt)
			require.NoError(t, e.revoke(e.ctx, payload(app.ActionRevoke, r.ID)))
			assert.Empty(t, e.iamAccess(), "revoke deletes the inline policy")
		})
	}
}

// bigPolicyCatalog is a catalog whose timeboxed policy has n statements.
func bigPolicyCatalog(requester, principal string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `version: 1
admins: [admin@example.com]
principals:
  %s: %s
roles:
  - id: huge
    description: too much to fit
    provider: iam-timeboxed-policy
    target:
      policy:
        Version: "2012-10-17"
        Statement:
`, requester, principal)
	for i := range n {
		fmt.Fprintf(&b, "          - {Sid: S%03d, Effect: Allow, Action: 's3:GetObject', Resource: 'arn:aws:s3:::bucket-number-%03d/*'}\n", i, i)
	}
	fmt.Fprintf(&b, `    requesters: [%s]
    duration: {max: 1h}
    autoApprove: true
`, requester)
	return b.String()
}

// TestTimeboxedPolicyTooBig: a policy that cannot fit IAM's inline limit
// once the time condition is added is a catalog error naming the file, the
// line and the field, before anything reaches AWS.
func TestTimeboxedPolicyTooBig(t *testing.T) {
	_, err := catalog.Parse("big.yaml", []byte(bigPolicyCatalog("alice@example.com", "user/alice", 30)))
	require.Error(t, err)
	var verr *catalog.ValidationError
	require.True(t, errors.As(err, &verr), "%T", err)
	require.Len(t, verr.Problems, 1, err.Error())
	p := verr.Problems[0]
	assert.Equal(t, "big.yaml", p.File)
	assert.Equal(t, "roles[0].target.policy", p.Field)
	assert.Equal(t, 10, p.Line, "the line of target.policy")
	assert.Contains(t, p.Message, "over the 2048 limit for inline policies on IAM users")
	assert.Contains(t, err.Error(), "big.yaml:10:")
	t.Log(err)

	// The same policy fits the larger limit of a role, when only roles request it.
	_, err = catalog.Parse("big.yaml", []byte(bigPolicyCatalog("erin@example.com", "role/erin-ops", 30)))
	require.NoError(t, err)
	_, err = catalog.Parse("big.yaml", []byte(bigPolicyCatalog("erin@example.com", "role/erin-ops", 150)))
	require.ErrorContains(t, err, "over the 10240 limit for inline policies on IAM roles")
}
