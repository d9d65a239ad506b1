package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/dynamo"
	"github.com/jitaccess/jit/internal/iamgrant"
)

// The invariants, in report order.
const (
	invNoStrayAccess  = "No IAM access without an ACTIVE request that holds it in the ledger"
	invPreExisting    = "Access the principals had before any request is still there"
	invTerminal       = "Every request is in a terminal state"
	invChain          = "Every audit chain verifies"
	invOneRecord      = "Every state change has exactly one audit record"
	invLedgerReleased = "The ledger holds nothing for an ended request"
)

var invariantOrder = []string{invNoStrayAccess, invPreExisting, invTerminal, invChain, invOneRecord, invLedgerReleased}

// invariant is one invariant's outcome: how many things were checked and
// what broke it.
type invariant struct {
	Checked    int
	Violations []string
}

func (i *invariant) fail(format string, args ...any) {
	i.Violations = append(i.Violations, fmt.Sprintf(format, args...))
}

// preExisting gives the principals the access they have before any request.
func (d *driver) preExisting(ctx context.Context) error {
	c := iam.NewFromConfig(d.st.AWSConfig())
	for _, g := range preExisting {
		var err error
		switch {
		case g.Provider == access.ProviderIAMGroup:
			_, err = c.AddUserToGroup(ctx, &iam.AddUserToGroupInput{GroupName: aws.String(g.Target.Group), UserName: aws.String(g.Principal.Name)})
		case g.Principal.Kind == access.PrincipalRole:
			_, err = c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(g.Principal.Name), PolicyArn: aws.String(g.Target.PolicyARN)})
		default:
			_, err = c.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{UserName: aws.String(g.Principal.Name), PolicyArn: aws.String(g.Target.PolicyARN)})
		}
		if err != nil {
			return fmt.Errorf("pre-existing access %s: %w", g.LedgerKey(), err)
		}
	}
	return nil
}

// snapshot checks, between two minutes of the run (nothing in flight, faults
// on), that no access is in IAM unless a request that holds it in the
// ledger is ACTIVE, or has stopped midway with its way out kept: an
// APPROVED request whose activation failed, or a request that ended while
// it was being activated, with its revoke schedule still there. It also
// counts ACTIVE requests whose access is missing (cut off).
func (d *driver) snapshot(ctx context.Context, minute int) error {
	cfg := d.st.AWSConfig()
	have, err := iamAccess(ctx, iam.NewFromConfig(cfg), d.st.DemoIAM())
	if err != nil {
		return err
	}
	ids, ledger, err := scanState(ctx, dynamodb.NewFromConfig(cfg))
	if err != nil {
		return err
	}
	store, sched := d.st.Store(), scheduler.NewFromConfig(cfg)
	pre := preExistingKeys()
	var checked, missing int
	var violations []string
	for _, key := range sortedKeys(have) {
		checked++
		if pre[key] {
			continue
		}
		ok := false
		var who []string
		for _, h := range ledger[key].Holders {
			r, err := store.Get(ctx, h)
			if err != nil {
				return err
			}
			who = append(who, h+" "+string(r.Status))
			switch r.Status {
			case access.StatusActive:
				ok = true
			case access.StatusApproved, access.StatusCancelled, access.StatusFailed:
				_, err := sched.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(app.ActionRevoke + "-" + h), GroupName: aws.String(stack.ScheduleGroup)})
				ok = ok || err == nil
			}
		}
		if !ok {
			violations = append(violations, fmt.Sprintf("minute %d: %s is in IAM; ledger holders %v%s", minute, key, who, d.requestsFor(ctx, ids, key)))
		}
	}
	for key, l := range ledger {
		if have[key] {
			continue
		}
		for _, h := range l.Holders {
			if r, err := store.Get(ctx, h); err == nil && r.Status == access.StatusActive {
				missing++
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.snapshots++
	d.snapChecked += checked
	d.snapViolations = append(d.snapViolations, violations...)
	d.snapMissing += missing
	return nil
}

// requestsFor describes the requests for the access named by key (status,
// last error, trail), for a violation.
func (d *driver) requestsFor(ctx context.Context, ids []string, key string) string {
	store := d.st.Store()
	var out []string
	for _, id := range ids {
		r, err := store.Get(ctx, id)
		if err != nil || r.Grant().LedgerKey() != key {
			continue
		}
		recs, _ := store.Audit(ctx, id)
		out = append(out, fmt.Sprintf("%s %s (last error %q): %s", id, r.Status, r.LastError, trailLine(recs)))
	}
	if len(out) == 0 {
		return "; no request for it"
	}
	return "; requests for it: " + strings.Join(out, " || ")
}

func preExistingKeys() map[string]bool {
	pre := map[string]bool{}
	for _, g := range preExisting {
		pre[g.LedgerKey()] = true
	}
	return pre
}

// check reads everything behind the system's back, with fault-free
// clients, and checks the invariants of one batch.
func check(ctx context.Context, st *stack.Stack, d *driver, br *batchResult) error {
	cfg := st.AWSConfig()
	db := dynamodb.NewFromConfig(cfg)
	store := st.Store()
	for _, name := range invariantOrder {
		br.Invariants[name] = &invariant{}
	}

	// Every item of the state table: requests and ledger entries.
	ids, ledger, err := scanState(ctx, db)
	if err != nil {
		return err
	}
	reqs := map[string]access.Request{}
	trails := map[string][]access.AuditRecord{}
	for _, id := range ids {
		r, err := store.Get(ctx, id)
		if err != nil {
			return err
		}
		recs, err := store.Audit(ctx, id)
		if err != nil {
			return err
		}
		reqs[id], trails[id] = r, recs
	}
	br.Requests = len(reqs)
	known := map[string]bool{}
	for _, lc := range d.plans {
		if lc.ID != "" {
			known[lc.ID] = true
			if _, ok := reqs[lc.ID]; !ok {
				br.Invariants[invTerminal].fail("request %s (lifecycle %d) was answered 201 but is not in the store", lc.ID, lc.N)
			}
		}
	}
	for id := range reqs {
		if !known[id] {
			br.Unanswered++ // created, but the client saw an error
		}
	}

	// Terminal states.
	inv := br.Invariants[invTerminal]
	for _, id := range sortedKeys(reqs) {
		r := reqs[id]
		inv.Checked++
		br.Statuses[r.Status]++
		if !r.Status.Terminal() {
			inv.fail("request %s (%s, %s) is %s (last error: %q)", id, r.RoleID, r.Requester, r.Status, r.LastError)
		}
	}

	// Audit chains, and one record per state change.
	chain, one := br.Invariants[invChain], br.Invariants[invOneRecord]
	for _, id := range sortedKeys(reqs) {
		r, recs := reqs[id], trails[id]
		chain.Checked++
		if err := access.VerifyTrail(r, recs); err != nil {
			chain.fail("request %s: %v", id, err)
		}
		one.Checked++
		if msg := oneRecordPerChange(r, recs); msg != "" {
			one.fail("request %s: %s", id, msg)
		} else if msg := noDuplicateSelfLoops(r, recs); msg != "" {
			one.fail("request %s: %s; trail: %s", id, msg, trailLine(recs))
		}
		br.AuditRecords += len(recs)
		tally(br, r, recs)
	}
	d.mu.Lock()
	for _, lc := range d.plans {
		if recs, ok := trails[lc.ID]; ok && lc.ID != "" {
			for _, msg := range acknowledged(lc.Acks, recs) {
				one.fail("request %s (lifecycle %d): %s; trail: %s", lc.ID, lc.N, msg, trailLine(recs))
			}
		}
	}
	d.mu.Unlock()
	orphans, err := auditOrphans(ctx, db, reqs)
	if err != nil {
		return err
	}
	for _, o := range orphans {
		one.fail("audit records of %s, which is not a request", o)
	}

	// IAM against the ledger.
	have, err := iamAccess(ctx, iam.NewFromConfig(cfg), st.DemoIAM())
	if err != nil {
		return err
	}
	pre := preExistingKeys()
	stray := br.Invariants[invNoStrayAccess]
	d.mu.Lock()
	stray.Checked += d.snapChecked
	stray.Violations = append(stray.Violations, d.snapViolations...)
	br.Snapshots, br.SnapshotMissing = d.snapshots, d.snapMissing
	d.mu.Unlock()
	for _, key := range sortedKeys(have) {
		stray.Checked++
		if pre[key] {
			continue
		}
		l := ledger[key]
		holdsActive := slices.ContainsFunc(l.Holders, func(h string) bool { return reqs[h].Status == access.StatusActive })
		if !holdsActive {
			var who []string
			for _, r := range reqs {
				if r.Grant().LedgerKey() == key {
					who = append(who, r.ID+" "+string(r.Status))
				}
			}
			slices.Sort(who)
			stray.fail("%s is in IAM; ledger holders %v%s", key, l.Holders, d.requestsFor(ctx, ids, key))
		}
	}
	kept := br.Invariants[invPreExisting]
	for key := range pre {
		kept.Checked++
		if !have[key] {
			l, ok := ledger[key]
			kept.fail("%s was taken away; ledger entry present %v, holders %v, pre-existing %v%s", key, ok, l.Holders, l.PreExisting, d.requestsFor(ctx, ids, key))
		}
	}
	released := br.Invariants[invLedgerReleased]
	for _, key := range sortedKeys(ledger) {
		released.Checked++
		for _, h := range ledger[key].Holders {
			if r, ok := reqs[h]; !ok || r.Status.Terminal() {
				released.fail("%s is still held by %s (%s)", key, h, r.Status)
			}
		}
	}

	// What is left in the schedule group (all due, so it should be nothing).
	left, err := schedulesLeft(ctx, scheduler.NewFromConfig(cfg))
	if err != nil {
		return err
	}
	br.SchedulesLeft = left
	br.Overlaps = overlaps(reqs, trails)
	return nil
}

// oneRecordPerChange checks a trail against its request: one record per
// version, numbered 1..version, each starting where the one before ended,
// the last one ending in the request's status.
func oneRecordPerChange(r access.Request, recs []access.AuditRecord) string {
	if len(recs) != r.Version {
		return fmt.Sprintf("version %d but %d audit records", r.Version, len(recs))
	}
	for i, rec := range recs {
		if rec.Seq != i+1 {
			return fmt.Sprintf("record %d has sequence %d", i+1, rec.Seq)
		}
		want := access.Status("")
		if i > 0 {
			want = recs[i-1].To
		}
		if rec.From != want {
			return fmt.Sprintf("record %d goes from %s, but the one before ended in %s", rec.Seq, rec.From, want)
		}
	}
	if last := recs[len(recs)-1]; last.To != r.Status {
		return fmt.Sprintf("the last record ends in %s, the request is %s", last.To, r.Status)
	}
	return ""
}

// noDuplicateSelfLoops finds records that repeat a change instead of
// making one: a record that leaves the status as it was (a revoke that
// failed, a drift finding, the first approval of a quorum) passes the chain
// checks however often it is written. One approval per approver; one drift
// record per finding (nothing in between); as many revoke-failed records as
// the request counts failed revokes.
func noDuplicateSelfLoops(r access.Request, recs []access.AuditRecord) string {
	decided := map[string]int{}
	failed := 0
	for i, rec := range recs {
		switch rec.Action {
		case access.EventApprove, access.EventDeny:
			who := strings.ToLower(rec.Actor)
			if decided[who]++; decided[who] > 1 {
				return fmt.Sprintf("record %d: a second decision by %s", rec.Seq, rec.Actor)
			}
		case access.EventDrift:
			if i > 0 && recs[i-1].Action == access.EventDrift && recs[i-1].Detail == rec.Detail {
				return fmt.Sprintf("records %d and %d: the same drift finding twice", recs[i-1].Seq, rec.Seq)
			}
		case access.EventRevokeFailed:
			failed++
		}
	}
	if failed != r.RevokeAttempts {
		return fmt.Sprintf("%d revoke-failed records, but the request counts %d failed revokes", failed, r.RevokeAttempts)
	}
	return ""
}

// acknowledged checks the gateway's answers to a lifecycle's decisions,
// cancels and revokes against its trail: per action and actor, every 200
// has its own audit record and a refusal (4xx, e.g. 409) none. An answer
// that did not come (a 5xx, no answer) may or may not have one: the change
// may have been recorded before the error, or a failed early revoke is
// finished by the sweeper in that actor's name.
func acknowledged(acks []ack, recs []access.AuditRecord) []string {
	type key struct {
		action access.EventType
		actor  string
	}
	ok, unsure := map[key]int{}, map[key]int{}
	var keys []key
	for _, a := range acks {
		k := key{a.Action, strings.ToLower(a.Actor)}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
		switch {
		case a.Status == http.StatusOK:
			ok[k]++
		case a.Status >= 400 && a.Status < 500:
		default:
			unsure[k]++
		}
	}
	var out []string
	for _, k := range keys {
		n := 0
		for _, rec := range recs {
			if rec.Action == k.action && access.SameIdentity(rec.Actor, k.actor) {
				n++
			}
		}
		if n < ok[k] || n > ok[k]+unsure[k] {
			out = append(out, fmt.Sprintf("%s by %s: %d answered 200, %d without an answer, but %d audit records", k.action, k.actor, ok[k], unsure[k], n))
		}
	}
	return out
}

// trailLine is a trail, one record after the other, for a violation.
func trailLine(recs []access.AuditRecord) string {
	var parts []string
	for _, r := range recs {
		parts = append(parts, fmt.Sprintf("%d %s by %s %s→%s %q", r.Seq, r.Action, r.Actor, r.From, r.To, r.Detail))
	}
	return strings.Join(parts, " | ")
}

// tally counts how requests ended and who ended them.
func tally(br *batchResult, r access.Request, recs []access.AuditRecord) {
	for _, rec := range recs {
		switch rec.Action {
		case access.EventExpire:
			switch rec.Actor {
			case app.ActorSweeper:
				br.ExpiredBySweeper++
			case app.ActorRevoke:
				br.ExpiredBySchedule++
			default:
				br.ExpiredByOther++
			}
		case access.EventRevoke:
			switch {
			case strings.HasPrefix(rec.Actor, "event:"):
				br.RevokedByEvent++
			case rec.Actor == r.Requester:
				br.RevokedByRequester++
			case r.IsApprover(rec.Actor):
				br.RevokedByApprover++
			default:
				br.RevokedByAdmin++
			}
		case access.EventRevokeFailed:
			br.RevokeFailedRecords++
		case access.EventDrift:
			br.DriftRecords++
		case access.EventActivate:
			br.Activated++
		case access.EventTimeout:
			br.TimedOutBySweeper++
		case access.EventActivationFailed:
			if strings.Contains(rec.Detail, "window ended") {
				br.FailedWindowEnded++
			}
		}
	}
}

// overlaps counts requests whose access was active while another request
// held the same access (same ledger key).
func overlaps(reqs map[string]access.Request, trails map[string][]access.AuditRecord) int {
	type span struct{ from, to time.Time }
	byKey := map[string][]span{}
	for id, r := range reqs {
		if r.Provider == access.ProviderIAMTimeboxedPolicy {
			continue // one entry per request: never shared
		}
		var s span
		for _, rec := range trails[id] {
			switch rec.Action {
			case access.EventActivate:
				s.from = rec.At
			case access.EventExpire, access.EventRevoke:
				s.to = rec.At
			}
		}
		if !s.from.IsZero() && !s.to.IsZero() {
			byKey[r.Grant().LedgerKey()] = append(byKey[r.Grant().LedgerKey()], s)
		}
	}
	n := 0
	for _, spans := range byKey {
		for i, a := range spans {
			for j, b := range spans {
				if i != j && a.from.Before(b.to) && b.from.Before(a.to) {
					n++
					break
				}
			}
		}
	}
	return n
}

type ledgerEntry struct {
	Holders     []string
	PreExisting bool
}

// scanState reads the whole state table (the checker may scan; the system
// may not): request ids and ledger entries.
func scanState(ctx context.Context, db *dynamodb.Client) ([]string, map[string]ledgerEntry, error) {
	var ids []string
	ledger := map[string]ledgerEntry{}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(stack.StateTable), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("scan %s: %w", stack.StateTable, err)
		}
		for _, it := range page.Items {
			pk := str(it[dynamo.AttrPK])
			switch {
			case strings.HasPrefix(pk, "REQ#"):
				ids = append(ids, strings.TrimPrefix(pk, "REQ#"))
			case strings.HasPrefix(pk, "GRANT#"):
				var e ledgerEntry
				if ss, ok := it[dynamo.AttrHolders].(*ddbtypes.AttributeValueMemberSS); ok {
					e.Holders = ss.Value
				}
				if b, ok := it[dynamo.AttrPreExisting].(*ddbtypes.AttributeValueMemberBOOL); ok {
					e.PreExisting = b.Value
				}
				ledger[strings.TrimPrefix(pk, "GRANT#")] = e
			}
		}
	}
	slices.Sort(ids)
	return ids, ledger, nil
}

func str(v ddbtypes.AttributeValue) string {
	if s, ok := v.(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// auditOrphans lists request ids in the audit table without a request item.
func auditOrphans(ctx context.Context, db *dynamodb.Client, reqs map[string]access.Request) ([]string, error) {
	seen := map[string]bool{}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(stack.AuditTable), ProjectionExpression: aws.String(dynamo.AttrRequestID)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", stack.AuditTable, err)
		}
		for _, it := range page.Items {
			id := str(it[dynamo.AttrRequestID])
			if _, ok := reqs[id]; !ok {
				seen[id] = true
			}
		}
	}
	return sortedKeys(seen), nil
}

// iamAccess is every piece of access the demo principals have in IAM,
// named as the ledger names it.
func iamAccess(ctx context.Context, c *iam.Client, demo stack.DemoIAM) (map[string]bool, error) {
	out := map[string]bool{}
	key := func(kind access.ProviderKind, pk access.PrincipalKind, name, what string) string {
		return string(kind) + "|" + access.Principal{Kind: pk, Name: name}.String() + "|" + what
	}
	for _, u := range demo.Users {
		gs := iam.NewListGroupsForUserPaginator(c, &iam.ListGroupsForUserInput{UserName: aws.String(u)})
		for gs.HasMorePages() {
			page, err := gs.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, g := range page.Groups {
				out[key(access.ProviderIAMGroup, access.PrincipalUser, u, aws.ToString(g.GroupName))] = true
			}
		}
		ap := iam.NewListAttachedUserPoliciesPaginator(c, &iam.ListAttachedUserPoliciesInput{UserName: aws.String(u)})
		for ap.HasMorePages() {
			page, err := ap.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, a := range page.AttachedPolicies {
				out[key(access.ProviderIAMPolicy, access.PrincipalUser, u, aws.ToString(a.PolicyArn))] = true
			}
		}
		ip := iam.NewListUserPoliciesPaginator(c, &iam.ListUserPoliciesInput{UserName: aws.String(u)})
		for ip.HasMorePages() {
			page, err := ip.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, n := range page.PolicyNames {
				out[key(access.ProviderIAMTimeboxedPolicy, access.PrincipalUser, u, strings.TrimPrefix(n, iamgrant.InlinePolicyPrefix))] = true
			}
		}
	}
	for _, r := range demo.Roles {
		ap := iam.NewListAttachedRolePoliciesPaginator(c, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(r)})
		for ap.HasMorePages() {
			page, err := ap.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, a := range page.AttachedPolicies {
				out[key(access.ProviderIAMPolicy, access.PrincipalRole, r, aws.ToString(a.PolicyArn))] = true
			}
		}
		ip := iam.NewListRolePoliciesPaginator(c, &iam.ListRolePoliciesInput{RoleName: aws.String(r)})
		for ip.HasMorePages() {
			page, err := ip.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, n := range page.PolicyNames {
				out[key(access.ProviderIAMTimeboxedPolicy, access.PrincipalRole, r, strings.TrimPrefix(n, iamgrant.InlinePolicyPrefix))] = true
			}
		}
	}
	return out, nil
}

func schedulesLeft(ctx context.Context, c *scheduler.Client) (int, error) {
	n := 0
	p := scheduler.NewListSchedulesPaginator(c, &scheduler.ListSchedulesInput{GroupName: aws.String(stack.ScheduleGroup)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, err
		}
		n += len(page.Schedules)
	}
	return n, nil
}
