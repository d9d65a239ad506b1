package email_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/email"
	"github.com/jitaccess/jit/internal/email/mototest"
)

var _ app.Notifier = (*email.Sender)(nil)

func TestMain(m *testing.M) { awstest.Main(m) }

// fakeSES records what would have been sent and fails for chosen recipients.
type fakeSES struct {
	mu     sync.Mutex
	inputs []*sesv2.SendEmailInput
	failTo string
}

func (f *fakeSES) SendEmail(_ context.Context, in *sesv2.SendEmailInput, _ ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inputs = append(f.inputs, in)
	if in.Destination.ToAddresses[0] == f.failTo {
		return nil, errors.New("MessageRejected: boom")
	}
	return &sesv2.SendEmailOutput{MessageId: aws.String("id")}, nil
}

func TestNotifySendsOneEmailPerRecipient(t *testing.T) {
	ses := &fakeSES{}
	s := email.New(ses, "jit@example.com", baseURL, email.WithConfigurationSet("jit"))
	n := access.Notice{Kind: access.NoticeBreakGlass, To: []string{"bob@example.com", "security@example.com", "BOB@example.com"}, Request: sampleRequest()}
	require.NoError(t, s.Notify(context.Background(), n))

	want, err := email.Render(n, baseURL)
	require.NoError(t, err)
	require.Len(t, ses.inputs, 2, "duplicates are dropped")
	for i, to := range []string{"bob@example.com", "security@example.com"} {
		in := ses.inputs[i]
		assert.Equal(t, []string{to}, in.Destination.ToAddresses)
		assert.Empty(t, in.Destination.CcAddresses)
		assert.Empty(t, in.Destination.BccAddresses)
		assert.Equal(t, "jit@example.com", aws.ToString(in.FromEmailAddress))
		assert.Equal(t, "jit", aws.ToString(in.ConfigurationSetName))
		msg := in.Content.Simple
		require.NotNil(t, msg)
		assert.Equal(t, want.Subject, aws.ToString(msg.Subject.Data))
		assert.Equal(t, want.HTML, aws.ToString(msg.Body.Html.Data))
		assert.Equal(t, want.Text, aws.ToString(msg.Body.Text.Data))
		assert.Equal(t, "UTF-8", aws.ToString(msg.Body.Html.Charset))
	}
}

func TestNotifyNobodyIsANoOp(t *testing.T) {
	ses := &fakeSES{}
	require.NoError(t, email.New(ses, "jit@example.com", "").Notify(context.Background(), access.Notice{Kind: access.NoticeApproved, Request: sampleRequest()}))
	assert.Empty(t, ses.inputs)
}

func TestNotifyTriesEveryoneAndReportsFailures(t *testing.T) {
	ses := &fakeSES{failTo: "bob@example.com"}
	n := access.Notice{Kind: access.NoticeDenied, To: []string{"bob@example.com", "alice@example.com"}, Request: sampleRequest()}
	err := email.New(ses, "jit@example.com", "").Notify(context.Background(), n)
	require.Error(t, err)
	assert.Equal(t, access.KindInternal, access.KindOf(err))
	assert.Contains(t, err.Error(), "req-1")
	assert.Contains(t, err.Error(), "bob@example.com")
	assert.Contains(t, err.Error(), "MessageRejected")
	assert.Len(t, ses.inputs, 2, "alice still gets hers")
}

func TestNotifyRefusesToShareAnApprovalLink(t *testing.T) {
	ses := &fakeSES{}
	n := access.Notice{Kind: access.NoticeApprovalRequested, To: []string{"bob@example.com", "carol@example.com"}, Request: sampleRequest(), ActionURL: actionURL}
	err := email.New(ses, "jit@example.com", "").Notify(context.Background(), n)
	assert.Equal(t, access.KindInternal, access.KindOf(err))
	assert.Empty(t, ses.inputs)
}

func TestNotifyThroughMoto(t *testing.T) {
	srv := awstest.Require(t)
	ctx := awstest.Context(t)
	client := sesv2.NewFromConfig(srv.Config())
	_, err := client.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String("jit@example.com")})
	require.NoError(t, err)
	s := email.New(client, "jit@example.com", baseURL)

	r := with(func(r *access.Request) { r.Justification = evil; r.Ticket = "INC-42 & co" })
	n := access.Notice{Kind: access.NoticeApprovalRequested, To: []string{"bob@example.com"}, Request: r, ActionURL: actionURL}
	require.NoError(t, s.Notify(ctx, n))
	require.NoError(t, s.Notify(ctx, access.Notice{Kind: access.NoticeBreakGlass, To: []string{"bob@example.com", "security@example.com"}, Request: r}))

	sent, err := mototest.SentMessages(srv.URL)
	require.NoError(t, err)
	require.Len(t, sent, 3)

	first := sent[0]
	assert.Equal(t, "jit@example.com", first.From)
	assert.Equal(t, []string{"bob@example.com"}, first.To)
	assert.Equal(t, "Approval needed: alice@example.com requests prod-readonly on user/alice for 2h 30m", first.Subject)
	// moto keeps the HTML part only.
	assert.Contains(t, first.Body, `href="`+actionURL+`"`)
	assert.Contains(t, first.Body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.NotContains(t, first.Body, "<script")
	assert.Contains(t, first.Body, "INC-42 &amp; co")
	assert.Contains(t, first.Body, portal)

	for i, to := range []string{"bob@example.com", "security@example.com"} {
		assert.Equal(t, []string{to}, sent[1+i].To)
		assert.True(t, strings.HasPrefix(sent[1+i].Subject, "[BREAK-GLASS] "))
		assert.NotContains(t, sent[1+i].Body, "/approvals/")
	}
}

func TestNotifyUnverifiedSenderFails(t *testing.T) {
	srv := awstest.Require(t)
	ctx := awstest.Context(t)
	s := email.New(sesv2.NewFromConfig(srv.Config()), "nobody@example.com", "")
	err := s.Notify(ctx, access.Notice{Kind: access.NoticeApproved, To: []string{"alice@example.com"}, Request: sampleRequest()})
	require.Error(t, err)
	assert.Equal(t, access.KindInternal, access.KindOf(err))
	assert.Equal(t, "internal error", access.PublicMessage(err))

	sent, err := mototest.SentMessages(srv.URL)
	require.NoError(t, err)
	assert.Empty(t, sent)
}
