package stack_test

import (
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/stack"
)

// TestMailboxShowsNewMail: the mailbox keeps what it read from moto until a
// function sends another email, and then shows that one too.
func TestMailboxShowsNewMail(t *testing.T) {
	s := start(t, stack.Options{Catalog: mustParse(t, e2eCatalog)})
	mails, err := s.Mailbox("")
	require.NoError(t, err)
	require.Empty(t, mails)

	alice := newClient(t, s, "alice@example.com")
	var created map[string]any
	require.Equal(t, http.StatusCreated, alice.json(http.MethodPost, "/requests",
		map[string]string{"roleId": "group-admin", "justification": "check the mailbox cache"}, &created))
	mails, err = s.Mailbox("")
	require.NoError(t, err)
	require.Len(t, mails, 1, "the approval request to carol")
	assert.Equal(t, []string{"carol@example.com"}, mails[0].To)

	again, err := s.Mailbox("carol@example.com")
	require.NoError(t, err)
	assert.Equal(t, mails, again, "nothing new: the same mail")

	require.Equal(t, http.StatusOK, alice.json(http.MethodPost, "/requests/"+created["id"].(string)+"/cancel", map[string]string{}, nil))
	mails, err = s.Mailbox("")
	require.NoError(t, err)
	require.Len(t, mails, 3, "the cancel notices to alice and carol, newest first")
	assert.Equal(t, 3, mails[0].N)
}

// TestMailboxSurvivesConfigureAWS: a ConfigureAWS that replaces the
// functions' API options cannot drop the counter the mailbox relies on.
func TestMailboxSurvivesConfigureAWS(t *testing.T) {
	s := start(t, stack.Options{Catalog: mustParse(t, e2eCatalog), ConfigureAWS: func(c *aws.Config) { c.APIOptions = nil }})
	mails, err := s.Mailbox("")
	require.NoError(t, err)
	require.Empty(t, mails)
	alice := newClient(t, s, "alice@example.com")
	require.Equal(t, http.StatusCreated, alice.json(http.MethodPost, "/requests",
		map[string]string{"roleId": "group-admin", "justification": "check the mailbox counter"}, nil))
	mails, err = s.Mailbox("")
	require.NoError(t, err)
	assert.Len(t, mails, 1, "the new approval email shows")
}
