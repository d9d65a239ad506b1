// Package config reads each function's settings from its environment and
// reports every missing variable at once.
package config

import (
	"fmt"
	"slices"
	"strings"
)

// Config is every setting any function uses.
type Config struct {
	StateTable        string // STATE_TABLE
	AuditTable        string // AUDIT_TABLE
	CatalogFile       string // CATALOG_FILE: path of the catalog YAML bundled with the function
	ScheduleGroup     string // SCHEDULE_GROUP
	SchedulerRoleARN  string // SCHEDULER_ROLE_ARN: the role EventBridge Scheduler assumes
	ScheduleDLQARN    string // SCHEDULE_DLQ_ARN
	GrantFunctionARN  string // GRANT_FUNCTION_ARN
	RevokeFunctionARN string // REVOKE_FUNCTION_ARN
	SenderEmail       string // SENDER_EMAIL: verified SES identity
	BaseURL           string // BASE_URL: public URL of the API, for links in emails
	SigningSecretARN  string // SIGNING_SECRET_ARN: HMAC key for approval links
	IdentityClaim     string // IDENTITY_CLAIM: JWT claim naming the caller (default email)
	AWSEndpoint       string // AWS_ENDPOINT_URL: optional, the local stack's emulator
}

// Function names, as under functions/.
const (
	Intake  = "intake"
	Approve = "approve"
	Grant   = "grant"
	Revoke  = "revoke"
	Sweep   = "sweep"
)

// Functions lists every function.
var Functions = []string{Intake, Approve, Grant, Revoke, Sweep}

type variable struct {
	name string
	dst  func(*Config) *string
	def  string
}

var variables = []variable{
	{"STATE_TABLE", func(c *Config) *string { return &c.StateTable }, ""},
	{"AUDIT_TABLE", func(c *Config) *string { return &c.AuditTable }, ""},
	{"CATALOG_FILE", func(c *Config) *string { return &c.CatalogFile }, "catalog.yaml"},
	{"SCHEDULE_GROUP", func(c *Config) *string { return &c.ScheduleGroup }, ""},
	{"SCHEDULER_ROLE_ARN", func(c *Config) *string { return &c.SchedulerRoleARN }, ""},
	{"SCHEDULE_DLQ_ARN", func(c *Config) *string { return &c.ScheduleDLQARN }, ""},
	{"GRANT_FUNCTION_ARN", func(c *Config) *string { return &c.GrantFunctionARN }, ""},
	{"REVOKE_FUNCTION_ARN", func(c *Config) *string { return &c.RevokeFunctionARN }, ""},
	{"SENDER_EMAIL", func(c *Config) *string { return &c.SenderEmail }, ""},
	{"BASE_URL", func(c *Config) *string { return &c.BaseURL }, ""},
	{"SIGNING_SECRET_ARN", func(c *Config) *string { return &c.SigningSecretARN }, ""},
	{"IDENTITY_CLAIM", func(c *Config) *string { return &c.IdentityClaim }, "email"},
	{"AWS_ENDPOINT_URL", func(c *Config) *string { return &c.AWSEndpoint }, ""},
}

// every path that approves may activate, and every path that activates or
// revokes needs the scheduler, IAM and email; only the approval pages and
// intake sign links.
var core = []string{"STATE_TABLE", "AUDIT_TABLE", "SCHEDULE_GROUP", "SCHEDULER_ROLE_ARN",
	"SCHEDULE_DLQ_ARN", "GRANT_FUNCTION_ARN", "REVOKE_FUNCTION_ARN", "SENDER_EMAIL", "BASE_URL"}

// Required lists the variables each function must have set.
var Required = map[string][]string{
	Intake:  append(slices.Clone(core), "SIGNING_SECRET_ARN"),
	Approve: append(slices.Clone(core), "SIGNING_SECRET_ARN"),
	Grant:   core,
	Revoke:  core,
	Sweep:   core,
}

// Load reads the configuration of function fn through getenv (os.Getenv).
func Load(fn string, getenv func(string) string) (Config, error) {
	req, ok := Required[fn]
	if !ok {
		return Config{}, fmt.Errorf("config: unknown function %q", fn)
	}
	var c Config
	var missing []string
	for _, v := range variables {
		val := strings.TrimSpace(getenv(v.name))
		if val == "" {
			val = v.def
		}
		*v.dst(&c) = val
		if val == "" && slices.Contains(req, v.name) {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("config for %s: missing environment variables: %s", fn, strings.Join(missing, ", "))
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return c, nil
}

// Env renders c as environment variables, for the local stack.
func (c Config) Env() map[string]string {
	out := map[string]string{}
	for _, v := range variables {
		if val := *v.dst(&c); val != "" {
			out[v.name] = val
		}
	}
	return out
}
