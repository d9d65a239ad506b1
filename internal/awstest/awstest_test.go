package awstest

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestServerAnswersAndResets(t *testing.T) {
	s := Require(t)
	out, err := sts.NewFromConfig(s.Config()).GetCallerIdentity(Context(t), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	require.Equal(t, AccountID, *out.Account)
	require.NoError(t, s.Reset())
}
