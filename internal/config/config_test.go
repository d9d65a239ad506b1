package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadReportsEveryMissingVariable(t *testing.T) {
	_, err := Load(Intake, func(string) string { return "" })
	require.Error(t, err)
	for _, name := range Required[Intake] {
		assert.Contains(t, err.Error(), name)
	}
}

func TestLoadDefaultsAndRoundTrip(t *testing.T) {
	env := map[string]string{}
	for _, n := range Required[Intake] {
		env[n] = "x-" + n
	}
	env["BASE_URL"] = "https://jit.example.com/"
	c, err := Load(Intake, func(k string) string { return env[k] })
	require.NoError(t, err)
	assert.Equal(t, "email", c.IdentityClaim)
	assert.Equal(t, "catalog.yaml", c.CatalogFile)
	assert.Equal(t, "https://jit.example.com", c.BaseURL)
	back := c.Env()
	c2, err := Load(Intake, func(k string) string { return back[k] })
	require.NoError(t, err)
	assert.Equal(t, c, c2)

	_, err = Load("nope", func(string) string { return "" })
	assert.Error(t, err)
}
