package main

import (
	"bytes"
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/faults"
)

// TestSoakShort is the short soak in `make test`: 100 lifecycles through
// the local stack under the default fault rate, every invariant checked.
func TestSoakShort(t *testing.T) {
	if _, err := exec.LookPath("moto_server"); err != nil {
		if awstest.InCI() {
			t.Fatalf("%s (CI=true: tests must not skip)", awstest.InstallHint)
		}
		t.Skip(awstest.InstallHint)
	}
	cfg := DefaultConfig()
	cfg.Lifecycles, cfg.Batch = 100, 100
	cfg.Progress = func(format string, args ...any) { t.Logf(format, args...) }
	cfg.Started = func(st *stack.Stack) { t.Logf("%s %s", awstest.MotoMarker, st.MotoURL()) }
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	res, err := Run(ctx, cfg)
	require.NoError(t, err)
	t.Log(summary(res))
	tot := res.Total
	for _, name := range invariantOrder {
		inv := tot.Invariants[name]
		require.NotNil(t, inv, name)
		assert.Empty(t, inv.Violations, name)
		assert.NotZero(t, inv.Checked, "%s checked nothing", name)
	}
	assert.True(t, res.OK())
	assert.Equal(t, 100, tot.Lifecycles)
	assert.NotZero(t, tot.Faults.InjectedTotal(), "faults were injected")
	assert.Equal(t, tot.Faults.InjectedTotal(), tot.Faults.InjectedByService(faults.IAM)+
		tot.Faults.InjectedByService(faults.Scheduler)+tot.Faults.InjectedByService(faults.DynamoDB), "only into the chosen services")
	assert.NotZero(t, tot.Faults.Retries, "the SDK retried")
	assert.NotZero(t, tot.Faults.CallFaultsTotal(), "some calls were faulted per call")
	assert.NotZero(t, tot.Faults.ExhaustedTotal(), "the app saw faults: calls whose faults outlasted the SDK's retries")
	assert.NotZero(t, tot.Metrics["Retries"], "the app retried")
	assert.NotZero(t, tot.Faults.InjectedByKind(faults.LostResponse), "some responses were lost")
	assert.Zero(t, tot.Faults.InjectedByService(faults.DynamoDB)-sumKinds(tot.Faults, faults.DynamoDB, faults.Throttle, faults.ServerError, faults.Timeout),
		"no lost responses into DynamoDB")
	assert.NotZero(t, tot.Statuses[access.StatusExpired])
	assert.NotZero(t, tot.Statuses[access.StatusRevoked])
	assert.NotZero(t, tot.ExpiredBySchedule)
	assert.NotZero(t, tot.DupConcurrent+tot.DupSequential, "some deliveries were duplicated")
	assert.NotZero(t, tot.Overlaps, "some grants overlapped")
	assert.NotZero(t, tot.MailboxLinks, "some approval links came from the mailbox")

	doc := res.Markdown()
	assert.Contains(t, doc, "| Every audit chain verifies | PASS |")
	assert.Contains(t, doc, "runtime.NumCPU")
}

func sumKinds(s faults.Stats, service string, kinds ...faults.Kind) int {
	n := 0
	for _, k := range kinds {
		for op, c := range s.Injected[k] {
			if strings.HasPrefix(op, service+".") {
				n += c
			}
		}
	}
	return n
}

func TestDuplicateSelfLoops(t *testing.T) {
	rec := func(seq int, a access.EventType, actor string, from, to access.Status, detail string) access.AuditRecord {
		return access.AuditRecord{Seq: seq, Action: a, Actor: actor, From: from, To: to, Detail: detail}
	}
	base := []access.AuditRecord{
		rec(1, access.EventSubmit, "alice", "", access.StatusPending, ""),
		rec(2, access.EventApprove, "bob", access.StatusPending, access.StatusPending, ""),
		rec(3, access.EventApprove, "carol", access.StatusPending, access.StatusApproved, ""),
		rec(4, access.EventActivate, "grant", access.StatusApproved, access.StatusActive, ""),
		rec(5, access.EventRevokeFailed, "revoke", access.StatusActive, access.StatusActive, "error: x"),
		rec(6, access.EventRevokeFailed, "revoke", access.StatusActive, access.StatusActive, "error: x"),
	}
	r := access.Request{Status: access.StatusActive, Version: 6, RevokeAttempts: 2}
	assert.Empty(t, noDuplicateSelfLoops(r, base), "two failed revokes, two records")
	r.RevokeAttempts = 1
	assert.Contains(t, noDuplicateSelfLoops(r, base), "2 revoke-failed records, but the request counts 1")

	twice := append(slices.Clone(base[:3]), rec(4, access.EventApprove, "Carol", access.StatusApproved, access.StatusApproved, ""))
	assert.Contains(t, noDuplicateSelfLoops(access.Request{}, twice), "a second decision by Carol")

	drift := append(slices.Clone(base[:4]),
		rec(5, access.EventDrift, "sweeper", access.StatusActive, access.StatusActive, "missing"),
		rec(6, access.EventDrift, "sweeper", access.StatusActive, access.StatusActive, "missing"))
	assert.Contains(t, noDuplicateSelfLoops(access.Request{}, drift), "the same drift finding twice")
}

func TestAcknowledged(t *testing.T) {
	recs := []access.AuditRecord{
		{Seq: 1, Action: access.EventSubmit, Actor: "alice"},
		{Seq: 2, Action: access.EventApprove, Actor: "Bob"},
		{Seq: 3, Action: access.EventActivate, Actor: "approve"},
		{Seq: 4, Action: access.EventRevoke, Actor: "alice"},
	}
	ok := []ack{{access.EventApprove, "bob", 200}, {access.EventCancel, "alice", 409}, {access.EventRevoke, "alice", 200}}
	assert.Empty(t, acknowledged(ok, recs))
	assert.Empty(t, acknowledged([]ack{{access.EventRevoke, "alice", 500}}, recs), "no answer: a record may be there")
	assert.Empty(t, acknowledged([]ack{{access.EventApprove, "bob", 502}, {access.EventApprove, "bob", 409}}, recs))

	got := acknowledged([]ack{{access.EventCancel, "alice", 200}}, recs)
	require.Len(t, got, 1)
	assert.Contains(t, got[0], "cancel by alice: 1 answered 200, 0 without an answer, but 0 audit records")
	got = acknowledged([]ack{{access.EventRevoke, "alice", 409}}, recs)
	require.Len(t, got, 1, "a refusal with a record")
	got = acknowledged([]ack{{access.EventApprove, "bob", 200}, {access.EventApprove, "bob", 200}}, recs)
	require.Len(t, got, 1, "two acknowledged approvals, one record")
}

func TestPlansAreSeeded(t *testing.T) {
	cat, err := parseCatalog()
	require.NoError(t, err)
	cfg := DefaultConfig()
	cfg.Lifecycles, cfg.Batch = 200, 100
	a, b := makePlans(cat, cfg), makePlans(cat, cfg)
	require.Len(t, a, 200)
	for i := range a {
		assert.Equal(t, *a[i], *b[i])
	}
	cfg.Seed = 2
	c := makePlans(cat, cfg)
	same := 0
	for i := range a {
		if a[i].Requester == c[i].Requester && a[i].Role.ID == c[i].Role.ID && a[i].Duration == c[i].Duration {
			same++
		}
	}
	assert.Less(t, same, 50, "another seed, other plans")

	modes, decisions, endings := map[access.Mode]int{}, map[decision]int{}, map[ending]int{}
	for _, l := range a {
		modes[l.Role.Mode()]++
		decisions[l.Decision]++
		endings[l.Ending]++
		assert.GreaterOrEqual(t, l.Duration, 5)
		assert.Less(t, l.RevokeAfter, l.Duration)
		assert.Contains(t, cat.RolesFor(l.Requester), l.Role, "the requester may ask for the role")
		assert.Less(t, l.Arrive, 100/cfg.Concurrency+1, "arrivals restart with each batch")
	}
	assert.Len(t, modes, 3, "auto, manual and break-glass")
	assert.Len(t, decisions, 6)
	assert.GreaterOrEqual(t, len(endings), 4)
}

func TestOneRecordPerChange(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	recs := []access.AuditRecord{
		{Seq: 1, To: access.StatusPending, At: at},
		{Seq: 2, From: access.StatusPending, To: access.StatusApproved, At: at},
		{Seq: 3, From: access.StatusApproved, To: access.StatusActive, At: at},
	}
	r := access.Request{Version: 3, Status: access.StatusActive}
	assert.Empty(t, oneRecordPerChange(r, recs))
	assert.Contains(t, oneRecordPerChange(access.Request{Version: 4, Status: access.StatusActive}, recs), "version 4 but 3 audit records")
	assert.Contains(t, oneRecordPerChange(access.Request{Version: 3, Status: access.StatusExpired}, recs), "ends in ACTIVE")
	gap := []access.AuditRecord{recs[0], {Seq: 2, From: access.StatusApproved, To: access.StatusActive}}
	assert.Contains(t, oneRecordPerChange(access.Request{Version: 2, Status: access.StatusActive}, gap), "goes from APPROVED")
}

func TestOverlaps(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2030, 1, 1, 0, m, 0, 0, time.UTC) }
	grp := func(id string) access.Request {
		return access.Request{ID: id, Provider: access.ProviderIAMGroup, Principal: access.Principal{Kind: access.PrincipalUser, Name: "alice"}, Target: access.Target{Group: "g"}}
	}
	trail := func(from, to int) []access.AuditRecord {
		return []access.AuditRecord{{Action: access.EventActivate, At: at(from)}, {Action: access.EventExpire, At: at(to)}}
	}
	reqs := map[string]access.Request{"a": grp("a"), "b": grp("b"), "c": grp("c")}
	trails := map[string][]access.AuditRecord{"a": trail(0, 10), "b": trail(5, 15), "c": trail(15, 20)}
	assert.Equal(t, 2, overlaps(reqs, trails), "a and b overlap; c starts when b ends")
}

func TestMarkdownShowsViolations(t *testing.T) {
	res := newResult(DefaultConfig())
	b := newBatchResult()
	b.Lifecycles = 1
	for _, name := range invariantOrder {
		b.Invariants[name] = &invariant{Checked: 1}
	}
	b.Invariants[invTerminal].fail("request X is ACTIVE")
	res.add(b)
	assert.False(t, res.OK())
	doc := res.Markdown()
	assert.Contains(t, doc, "AN INVARIANT BROKE")
	assert.Contains(t, doc, "| Every request is in a terminal state | FAIL | 1 requests | 1 |")
	assert.Contains(t, doc, "- batch 1: request X is ACTIVE")
	assert.Contains(t, summary(res), "FAIL Every request is in a terminal state")
}

func TestFlags(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 2, run([]string{"-kinds", "gremlins"}, &out, &errb))
	assert.Contains(t, errb.String(), "unknown fault kind")
	errb.Reset()
	assert.Equal(t, 2, run([]string{"-no-such-flag"}, &out, &errb))
	errb.Reset()
	assert.Equal(t, 1, run([]string{"-lifecycles", "0"}, &out, &errb))
	assert.True(t, strings.Contains(errb.String(), "-lifecycles must be positive"), errb.String())
}
