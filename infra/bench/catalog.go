package bench

import (
	"fmt"
	"strings"
)

// The IAM names the benchmark catalog grants; customer-managed policies in
// moto's account (123456789012).
const (
	AdminsGroup = "jit-bench-admins"
	LagGroup    = "jit-bench-lag"
	ReadOnlyARN = "arn:aws:iam::123456789012:policy/JitBenchReadOnly"
	AdminARN    = "arn:aws:iam::123456789012:policy/JitBenchAdmin"
	// LagUsers is how many grants end together in the revoke-lag benchmark.
	LagUsers = 200
)

// CatalogYAML is the policy catalog of the in-process benchmarks: one role
// per approval mode (one-approver, quorum, auto, glass) for alice and bob,
// and the auto-approved role "lag" for the users u000..u199. It returns the
// IAM user names it maps identities to.
func CatalogYAML() (string, []string) {
	var b strings.Builder
	users := []string{"alice", "bob", "carol", "dave", "admin"}
	b.WriteString(`version: 1
admins: [admin@example.com]
securityContacts: [secops@example.com]
groups:
  staff: [alice@example.com, bob@example.com]
  leads: [carol@example.com, dave@example.com]
  lag: [`)
	for i := range LagUsers {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "u%03d@example.com", i)
	}
	b.WriteString("]\nprincipals:\n")
	for _, u := range users {
		fmt.Fprintf(&b, "  %s@example.com: user/%s\n", u, u)
	}
	for i := range LagUsers {
		u := fmt.Sprintf("u%03d", i)
		users = append(users, u)
		fmt.Fprintf(&b, "  %s@example.com: user/%s\n", u, u)
	}
	fmt.Fprintf(&b, `roles:
  - id: one-approver
    description: group membership, one approver
    provider: iam-group
    target: {group: %[1]s}
    requesters: [group:staff]
    approvers: [carol@example.com]
    duration: {default: 1h, max: 4h}
    approvalDeadline: 2h
  - id: quorum
    description: group membership, two approvers must agree
    provider: iam-group
    target: {group: %[1]s}
    requesters: [group:staff]
    approvers: [group:leads]
    approvals: 2
    duration: {default: 1h, max: 4h}
  - id: auto
    description: read-only policy, approved by policy
    provider: iam-policy
    target: {policyArn: "%[2]s"}
    requesters: [group:staff]
    approvers: [group:leads]
    duration: {default: 1h, max: 8h}
    autoApprove: true
  - id: glass
    description: break-glass admin
    provider: iam-policy
    target: {policyArn: "%[3]s"}
    requesters: [group:staff]
    approvers: [carol@example.com]
    duration: {default: 1h, max: 2h}
    breakGlass: true
  - id: lag
    description: revoke-lag grants
    provider: iam-group
    target: {group: %[4]s}
    requesters: [group:lag]
    duration: {default: 1h, max: 2h}
    autoApprove: true
`, AdminsGroup, ReadOnlyARN, AdminARN, LagGroup)
	return b.String(), users
}
