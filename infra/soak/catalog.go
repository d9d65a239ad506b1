package main

import (
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/catalog"
)

// soakCatalog is the policy the soak runs under: every provider, every
// approval mode (auto, manual with a quorum of one and of two, break-glass),
// roles that grant the same access (so that grants overlap and share a
// ledger entry), IAM users and IAM roles as principals. Customer-managed
// policies only, so that moto need not load the AWS-managed ones.
const soakCatalog = `version: 1
admins: [admin@example.com]
securityContacts: [secops@example.com]
groups:
  devs: [alice@example.com, bob@example.com, frank@example.com, grace@example.com]
  leads: [carol@example.com, dave@example.com]
  ops: [erin@example.com, henry@example.com]
principals:
  alice@example.com: user/alice
  bob@example.com: user/bob
  frank@example.com: user/frank
  grace@example.com: user/grace
  carol@example.com: user/carol
  dave@example.com: user/dave
  erin@example.com: role/erin-ops
  henry@example.com: role/henry-ops
  admin@example.com: user/admin
roles:
  - id: ops-auto
    description: the jit-ops IAM group, approved by policy
    provider: iam-group
    target: {group: jit-ops}
    requesters: [group:devs]
    approvers: [group:leads]
    duration: {default: 30m, max: 2h}
    ticket: {required: false, pattern: '^SOAK-[0-9]+$'}
    justification: {minLength: 10}
    autoApprove: true
  - id: ops-manual
    description: the jit-ops IAM group, approved by a lead
    provider: iam-group
    target: {group: jit-ops}
    requesters: [group:devs]
    approvers: [group:leads]
    duration: {default: 30m, max: 2h}
    approvalDeadline: 30m
    ticket: {required: false, pattern: '^SOAK-[0-9]+$'}
    justification: {minLength: 10}
  - id: admin-quorum
    description: the jit-admins IAM group, approved by both leads
    provider: iam-group
    target: {group: jit-admins}
    requesters: [group:devs]
    approvers: [group:leads]
    approvals: 2
    duration: {default: 30m, max: 2h}
    approvalDeadline: 30m
    ticket: {required: false, pattern: '^SOAK-[0-9]+$'}
    justification: {minLength: 10}
  - id: read-auto
    description: the jit-soak/read managed policy, approved by policy
    provider: iam-policy
    target: {policyArn: "arn:aws:iam::123456789012:policy/jit-soak/read"}
    requesters: [group:devs, group:ops]
    approvers: [group:leads]
    duration: {default: 30m, max: 2h}
    ticket: {required: false, pattern: '^SOAK-[0-9]+$'}
    justification: {minLength: 10}
    autoApprove: true
  - id: read-manual
    description: the jit-soak/read managed policy, approved by a lead
    provider: iam-policy
    target: {policyArn: "arn:aws:iam::123456789012:policy/jit-soak/read"}
    requesters: [group:devs, group:ops]
    approvers: [group:leads]
    duration: {default: 30m, max: 2h}
    approvalDeadline: 30m
    ticket: {required: false, pattern: '^SOAK-[0-9]+$'}
    justification: {minLength: 10}
  - id: deploy-glass
    description: the jit-soak/deploy managed policy, break-glass
    provider: iam-policy
    target: {policyArn: "arn:aws:iam::123456789012:policy/jit-soak/deploy"}
    requesters: [group:leads, group:ops]
    approvers: [admin@example.com]
    duration: {default: 30m, max: 2h}
    ticket: {required: false, pattern: '^SOAK-[0-9]+$'}
    justification: {minLength: 30}
    breakGlass: true
  - id: reports-auto
    description: a per-request timeboxed inline policy, approved by policy
    provider: iam-timeboxed-policy
    target:
      policy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: s3:GetObject
            Resource: arn:aws:s3:::soak-reports/*
    requesters: [group:devs, group:ops, group:leads]
    approvers: [group:leads]
    duration: {default: 30m, max: 2h}
    ticket: {required: false, pattern: '^SOAK-[0-9]+$'}
    justification: {minLength: 10}
    autoApprove: true
  - id: reports-manual
    description: a per-request timeboxed inline policy, approved by a lead
    provider: iam-timeboxed-policy
    target:
      policy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Action: s3:GetObject
            Resource: arn:aws:s3:::soak-reports/*
    requesters: [group:devs, group:ops]
    approvers: [group:leads]
    duration: {default: 30m, max: 2h}
    approvalDeadline: 30m
    ticket: {required: false, pattern: '^SOAK-[0-9]+$'}
    justification: {minLength: 10}
`

// readPolicy is the managed policy two roles grant, one of them to henry
// before any request (pre-existing access that no revoke may take away).
const readPolicy = "arn:aws:iam::123456789012:policy/jit-soak/read"

// preExisting is access some principals have before the soak starts: grace
// is in the jit-ops group, henry-ops has the read policy attached. Both are
// also requested, so revokes meet it.
var preExisting = []access.Grant{
	{Provider: access.ProviderIAMGroup, Principal: access.Principal{Kind: access.PrincipalUser, Name: "grace"}, Target: access.Target{Group: "jit-ops"}},
	{Provider: access.ProviderIAMPolicy, Principal: access.Principal{Kind: access.PrincipalRole, Name: "henry-ops"}, Target: access.Target{PolicyARN: readPolicy}},
}

func parseCatalog() (*catalog.Catalog, error) {
	return catalog.Parse("soak-catalog.yaml", []byte(soakCatalog))
}
