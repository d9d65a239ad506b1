// Package deploy keeps the AWS SAM template (template.yaml) in agreement with
// the code: which functions exist and how they are built, the environment
// each one reads, the tables' keys and indexes, the HTTP routes, and the IAM
// actions each function's policies allow. The lists here are the code's side
// of that agreement; the package's tests read the template and the Makefile
// and fail on any difference, in either direction.
package deploy

import (
	"slices"
	"strings"

	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
)

// MetricNamespace is the CloudWatch namespace of the functions' embedded
// metrics; the template's alarms query it.
const MetricNamespace = "JitAccess"

// Alarmed lists the metrics the template alarms on (each > 0 in 5 minutes).
var Alarmed = []string{"RevokeFailures", "SweepOverdue", "GrantFailures"}

// IAM actions by what needs them. DynamoDB authorises TransactWriteItems by
// its parts (PutItem, UpdateItem, DeleteItem, ConditionCheckItem) and has no
// IAM action of that name; BatchGetItem and Query are their own actions.
var (
	// every function reads and writes state items (requests, inbox,
	// ledger, tokens), appends to the audit table, and sends mail.
	core = []string{
		"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
		"ses:SendEmail",
	}
	// the IAM providers (internal/iamgrant): grant, revoke and read back.
	// Every function may activate or withdraw a grant, so every one has them.
	provider = []string{
		"iam:AddUserToGroup", "iam:RemoveUserFromGroup", "iam:ListGroupsForUser",
		"iam:AttachUserPolicy", "iam:DetachUserPolicy", "iam:ListAttachedUserPolicies",
		"iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListAttachedRolePolicies",
		"iam:PutUserPolicy", "iam:DeleteUserPolicy", "iam:GetUserPolicy",
		"iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:GetRolePolicy",
	}
	// creating a schedule passes the scheduler's role to the service.
	// Nothing calls app.Scheduler.Reschedule yet, so no function may
	// scheduler:UpdateSchedule; add it here and in the template when one does.
	schedules = []string{"scheduler:CreateSchedule", "scheduler:DeleteSchedule", "iam:PassRole"}
	// signing and verifying approval links.
	signing = []string{"secretsmanager:GetSecretValue"}
)

// Calls lists, per function, every IAM action the function's code calls,
// and so exactly the actions the template's policies for it may allow.
//
//	intake   the API: submit (auto-approve and break-glass activate at once),
//	         lists (byRequester index, approver inbox + BatchGetItem), decide
//	         (activates), cancel and early revoke (unschedule), the audit
//	         trail (Query on the audit table), signed links for approvers
//	approve  the email-link pages: verify and consume the token, decide,
//	         activate on quorum
//	grant    the grant schedule: activate (revoke schedule first)
//	revoke   the revoke schedule and ticket events: withdraw (may re-grant
//	         for an overlapping request), cancel not-yet-active requests of a
//	         ticket (byTicket index); it only ever deletes schedules
//	sweep    the safety net: due index, expire, activate late, time out, drift
var Calls = map[string][]string{
	config.Intake:  join(core, provider, schedules, signing, []string{"dynamodb:Query", "dynamodb:BatchGetItem"}),
	config.Approve: join(core, provider, schedules, signing),
	config.Grant:   join(core, provider, schedules),
	config.Revoke:  join(core, provider, []string{"dynamodb:Query", "scheduler:DeleteSchedule"}),
	config.Sweep:   join(core, provider, schedules, []string{"dynamodb:Query"}),
}

// Query is one thing a function's code queries: an index of the state
// table, the state table itself (only for the leading keys LeadingKeys), or
// the audit table (Table "AuditTable").
type Query struct {
	Table       string // template resource: "StateTable" or "AuditTable"
	Index       string // a state table index (dynamo.Index*), or ""
	LeadingKeys string // for a base-table query: the dynamodb:LeadingKeys pattern
}

// Queries lists, per function, every Query its code makes, and so exactly
// the Query permissions the template may give it (resource and condition).
//
//	intake  ListByRequester (byRequester), ListAwaiting (the approver inbox,
//	        pk INBOX#<approver>), Audit (the audit table)
//	revoke  ListByTicket (byTicket)
//	sweep   ListDue (due)
var Queries = map[string][]Query{
	config.Intake: {
		{Table: "StateTable", Index: dynamo.IndexByRequester},
		{Table: "StateTable", LeadingKeys: "INBOX#*"},
		{Table: "AuditTable"},
	},
	config.Revoke: {{Table: "StateTable", Index: dynamo.IndexByTicket}},
	config.Sweep:  {{Table: "StateTable", Index: dynamo.IndexDue}},
}

// AuditActions are the only actions any policy may allow on the audit table:
// appending (inside a transaction only) and reading a trail.
var AuditActions = []string{"dynamodb:PutItem", "dynamodb:Query"}

// LogicalID is the template resource of a function: "intake" is
// "IntakeFunction", which the Makefile's build-%Function rule builds from
// ./functions/intake.
func LogicalID(fn string) string {
	if fn == "" {
		return ""
	}
	return strings.ToUpper(fn[:1]) + fn[1:] + "Function"
}

func join(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
