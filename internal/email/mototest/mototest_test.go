package mototest_test

import (
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/email/mototest"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func TestSentMessages(t *testing.T) {
	srv := awstest.Require(t)
	ctx := awstest.Context(t)
	client := sesv2.NewFromConfig(srv.Config())

	sent, err := mototest.SentMessages(srv.URL)
	require.NoError(t, err)
	assert.Empty(t, sent, "nothing sent yet")

	_, err = client.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String("jit@example.com")})
	require.NoError(t, err)
	_, err = client.SendEmail(ctx, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("jit@example.com"),
		Destination:      &types.Destination{ToAddresses: []string{"a@example.com"}, CcAddresses: []string{"b@example.com"}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: &types.Content{Data: aws.String("text only")},
			Body:    &types.Body{Text: &types.Content{Data: aws.String("hello")}},
		}},
	})
	require.NoError(t, err)
	_, err = client.SendEmail(ctx, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("jit@example.com"),
		Destination:      &types.Destination{ToAddresses: []string{"c@example.com"}},
		Content: &types.EmailContent{Raw: &types.RawMessage{Data: []byte(
			"From: jit@example.com\r\nTo: c@example.com\r\nSubject: =?utf-8?q?raw_=C3=A9?=\r\n\r\nraw body\r\n")}},
	})
	require.NoError(t, err)

	sent, err = mototest.SentMessages(srv.URL + "/")
	require.NoError(t, err)
	require.Len(t, sent, 2)
	assert.NotEmpty(t, sent[0].ID)
	assert.Equal(t, mototest.Sent{ID: sent[0].ID, From: "jit@example.com", To: []string{"a@example.com", "b@example.com"}, Subject: "text only", Body: "hello"}, sent[0])
	assert.Equal(t, "jit@example.com", sent[1].From)
	assert.Equal(t, []string{"c@example.com"}, sent[1].To)
	assert.Equal(t, "raw é", sent[1].Subject)
	assert.Equal(t, "raw body\r\n", sent[1].Body)
}

func TestSentMessagesUnreachable(t *testing.T) {
	port, err := awstest.FreePort()
	require.NoError(t, err)
	_, err = mototest.SentMessages("http://127.0.0.1:" + strconv.Itoa(port))
	assert.Error(t, err)
}
