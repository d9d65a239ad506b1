package wire_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/metrics"
	"github.com/jitaccess/jit/internal/wire"
)

func testConfig(fn string, t *testing.T) config.Config {
	env := map[string]string{}
	for _, name := range config.Required[fn] {
		env[name] = "arn:aws:lambda:us-east-1:123456789012:function:jit-" + name
	}
	env["STATE_TABLE"], env["AUDIT_TABLE"], env["SCHEDULE_GROUP"] = "jit-state", "jit-audit", "jit"
	env["SENDER_EMAIL"], env["BASE_URL"] = "jit@example.com", "https://jit.example.com"
	env["CATALOG_FILE"] = "../../infra/catalog.example.yaml"
	c, err := config.Load(fn, func(k string) string { return env[k] })
	require.NoError(t, err)
	return c
}

func TestEveryFunctionBuilds(t *testing.T) {
	for _, fn := range config.Functions {
		t.Run(fn, func(t *testing.T) {
			svc, err := wire.Service(fn, testConfig(fn, t), awstest.Config("http://127.0.0.1:1"), wire.Options{Metrics: metrics.Discard{}})
			require.NoError(t, err)
			assert.NotNil(t, svc.Catalog)
			for _, kind := range access.Providers {
				assert.Contains(t, svc.Providers, kind)
			}
			assert.Equal(t, fn == config.Intake || fn == config.Approve, svc.Tokens != nil, "only the link-signing functions read the key")
		})
	}
}

func TestBadCatalogStopsStartup(t *testing.T) {
	c := testConfig(config.Sweep, t)
	c.CatalogFile = "does-not-exist.yaml"
	_, err := wire.Service(config.Sweep, c, awstest.Config("http://127.0.0.1:1"), wire.Options{})
	assert.ErrorContains(t, err, "does-not-exist.yaml")
}

func TestAWSConfigFromLambdaEnvironment(t *testing.T) {
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "token")
	cfg, err := wire.AWSConfig(t.Context(), config.Config{AWSEndpoint: "http://127.0.0.1:5000"})
	require.NoError(t, err)
	assert.Equal(t, "eu-west-1", cfg.Region)
	assert.Equal(t, "http://127.0.0.1:5000", *cfg.BaseEndpoint)
	creds, err := cfg.Credentials.Retrieve(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "AKIDEXAMPLE", creds.AccessKeyID)
	assert.Equal(t, "token", creds.SessionToken)

	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	_, err = wire.AWSConfig(t.Context(), config.Config{})
	assert.ErrorContains(t, err, "AWS_REGION")
	assert.ErrorContains(t, err, "AWS_ACCESS_KEY_ID")
}
