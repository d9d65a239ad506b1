package main

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jitaccess/jit/infra/local/dispatch"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/faults"
)

// batchResult is what one batch did and found; Result sums them.
type batchResult struct {
	Lifecycles int
	Took       time.Duration

	Invariants map[string]*invariant

	Requests, Unanswered, SubmitFailed int
	Statuses                           map[access.Status]int
	Decisions, Endings                 map[string]int
	AuditRecords                       int

	Activated                                                             int
	ExpiredBySchedule, ExpiredBySweeper, ExpiredByOther                   int
	RevokedByRequester, RevokedByApprover, RevokedByAdmin, RevokedByEvent int
	TimedOutBySweeper, FailedWindowEnded                                  int
	RevokeFailedRecords, DriftRecords                                     int
	Overlaps, SchedulesLeft                                               int

	Faults       faults.Stats
	Metrics      map[string]float64
	MaxDurations map[string]time.Duration
	Dispatch     dispatch.Stats

	Deliveries, DupConcurrent, DupSequential, DupErrors int
	LateDups, HandlerErrors, TicketEvents               int
	MailboxLinks, IssuedLinks                           int

	API     map[string]map[int]int
	Samples []string

	Snapshots, SnapshotMissing int

	Sweeps, SweepErrors, DispatchErrors int
	Sweep                               app.SweepReport
	Minutes, SettleRounds               int
}

func newBatchResult() *batchResult {
	return &batchResult{
		Invariants: map[string]*invariant{}, Statuses: map[access.Status]int{},
		Decisions: map[string]int{}, Endings: map[string]int{},
		Faults: faults.Stats{Calls: map[string]int{}, OpAttempts: map[string]int{}, Injected: map[faults.Kind]map[string]int{},
			Failed: map[string]int{}, Exhausted: map[string]int{}, CallFaults: map[faults.Kind]map[string]int{}},
		Metrics: map[string]float64{}, MaxDurations: map[string]time.Duration{}, API: map[string]map[int]int{},
	}
}

func (b *batchResult) ok() bool {
	for _, inv := range b.Invariants {
		if len(inv.Violations) > 0 {
			return false
		}
	}
	return true
}

// Result is a whole run.
type Result struct {
	Config   Config
	Commit   string // git rev-parse --short HEAD, "-dirty" with local changes
	Started  time.Time
	Duration time.Duration
	Batches  int
	Slowest  time.Duration
	Total    *batchResult
}

func newResult(cfg Config) *Result {
	return &Result{Config: cfg, Started: time.Now(), Total: newBatchResult()}
}

// OK reports whether every invariant held in every batch.
func (r *Result) OK() bool { return r.Total.ok() }

func addMap[K comparable, V int | float64](dst, src map[K]V) {
	for k, v := range src {
		dst[k] += v
	}
}

func (r *Result) add(b *batchResult) {
	t := r.Total
	r.Batches++
	r.Slowest = max(r.Slowest, b.Took)
	for name, inv := range b.Invariants {
		if t.Invariants[name] == nil {
			t.Invariants[name] = &invariant{}
		}
		t.Invariants[name].Checked += inv.Checked
		for _, v := range inv.Violations {
			t.Invariants[name].Violations = append(t.Invariants[name].Violations, fmt.Sprintf("batch %d: %s", r.Batches, v))
		}
	}
	t.Lifecycles += b.Lifecycles
	t.Requests += b.Requests
	t.Unanswered += b.Unanswered
	t.SubmitFailed += b.SubmitFailed
	addMap(t.Statuses, b.Statuses)
	addMap(t.Decisions, b.Decisions)
	addMap(t.Endings, b.Endings)
	t.AuditRecords += b.AuditRecords
	t.Activated += b.Activated
	t.ExpiredBySchedule += b.ExpiredBySchedule
	t.ExpiredBySweeper += b.ExpiredBySweeper
	t.ExpiredByOther += b.ExpiredByOther
	t.RevokedByRequester += b.RevokedByRequester
	t.RevokedByApprover += b.RevokedByApprover
	t.RevokedByAdmin += b.RevokedByAdmin
	t.RevokedByEvent += b.RevokedByEvent
	t.TimedOutBySweeper += b.TimedOutBySweeper
	t.FailedWindowEnded += b.FailedWindowEnded
	t.RevokeFailedRecords += b.RevokeFailedRecords
	t.DriftRecords += b.DriftRecords
	t.Overlaps += b.Overlaps
	t.SchedulesLeft += b.SchedulesLeft

	addMap(t.Faults.Calls, b.Faults.Calls)
	addMap(t.Faults.Failed, b.Faults.Failed)
	addMap(t.Faults.OpAttempts, b.Faults.OpAttempts)
	addMap(t.Faults.Exhausted, b.Faults.Exhausted)
	t.Faults.Bursts += b.Faults.Bursts
	t.Faults.Delayed += b.Faults.Delayed
	for k, ops := range b.Faults.CallFaults {
		if t.Faults.CallFaults[k] == nil {
			t.Faults.CallFaults[k] = map[string]int{}
		}
		addMap(t.Faults.CallFaults[k], ops)
	}
	t.Faults.Attempts += b.Faults.Attempts
	t.Faults.Retries += b.Faults.Retries
	for k, ops := range b.Faults.Injected {
		if t.Faults.Injected[k] == nil {
			t.Faults.Injected[k] = map[string]int{}
		}
		addMap(t.Faults.Injected[k], ops)
	}
	addMap(t.Metrics, b.Metrics)
	for k, v := range b.MaxDurations {
		t.MaxDurations[k] = max(t.MaxDurations[k], v)
	}
	t.Dispatch.Fired += b.Dispatch.Fired
	t.Dispatch.Succeeded += b.Dispatch.Succeeded
	t.Dispatch.Retried += b.Dispatch.Retried
	t.Dispatch.DeadLettered += b.Dispatch.DeadLettered
	t.Dispatch.Deleted += b.Dispatch.Deleted

	t.Deliveries += b.Deliveries
	t.DupConcurrent += b.DupConcurrent
	t.DupSequential += b.DupSequential
	t.DupErrors += b.DupErrors
	t.LateDups += b.LateDups
	t.HandlerErrors += b.HandlerErrors
	t.TicketEvents += b.TicketEvents
	t.MailboxLinks += b.MailboxLinks
	t.IssuedLinks += b.IssuedLinks
	for action, codes := range b.API {
		if t.API[action] == nil {
			t.API[action] = map[int]int{}
		}
		addMap(t.API[action], codes)
	}
	for _, s := range b.Samples {
		if len(t.Samples) < 10 {
			t.Samples = append(t.Samples, fmt.Sprintf("batch %d: %s", r.Batches, s))
		}
	}
	t.Snapshots += b.Snapshots
	t.SnapshotMissing += b.SnapshotMissing
	t.Sweeps += b.Sweeps
	t.SweepErrors += b.SweepErrors
	t.DispatchErrors += b.DispatchErrors
	t.Sweep.Expired += b.Sweep.Expired
	t.Sweep.Activated += b.Sweep.Activated
	t.Sweep.TimedOut += b.Sweep.TimedOut
	t.Sweep.Failed += b.Sweep.Failed
	t.Sweep.Drift += b.Sweep.Drift
	t.Sweep.Checked += b.Sweep.Checked
	t.Sweep.Overdue += b.Sweep.Overdue
	t.Minutes += b.Minutes
	t.SettleRounds = max(t.SettleRounds, b.SettleRounds)
}

func pct(n, of int) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

func kindNames(ks []faults.Kind) string {
	var out []string
	for _, k := range ks {
		out = append(out, string(k))
	}
	return strings.Join(out, ", ")
}

// Markdown is docs/reliability.md.
func (r *Result) Markdown() string {
	c, t := r.Config, r.Total
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	verdict := "every invariant held"
	if !r.OK() {
		verdict = "AN INVARIANT BROKE"
	}
	w("# Reliability: the soak run\n\n")
	w("Generated by `make soak` (`go run ./infra/soak`); do not edit by hand. The same run with\n")
	w("100 lifecycles is a test in `make test` (`infra/soak`).\n\n")
	w("**Result: %s** — %d lifecycles through the local stack in %s, with %d faults injected.\n\n",
		verdict, t.Lifecycles, r.Duration.Round(time.Second), t.Faults.InjectedTotal())

	w("## Run\n\n| | |\n|---|---|\n")
	w("| Date | %s |\n", r.Started.UTC().Format("2006-01-02 15:04 MST"))
	w("| Commit | `%s` (`git rev-parse --short HEAD`; -dirty: the working tree had changes) |\n", r.Commit)
	w("| Machine | %d cores (runtime.NumCPU), %s/%s, %s |\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	w("| Lifecycles | %d, in %d batches of up to %d (a fresh local stack and moto_server each) |\n", t.Lifecycles, r.Batches, c.Batch)
	w("| Fault rate, per attempt | %s of the attempts of every %s call: %s (lost responses not into DynamoDB) |\n", pct(int(c.FaultRate*1000), 1000), strings.Join(c.Services, ", "), kindNames(c.Kinds))
	w("| Fault rate, per call | %s of those calls fail on every SDK attempt, the same kinds; each such fault starts an outage of the operation: its next %d calls (within %s) fail the same way |\n",
		pct(int(c.CallFaultRate*1000), 1000), c.CallFaultBurst, c.CallFaultBurstFor)
	w("| Timeouts and lost responses | take %s each (a timeout before the request is sent, a lost response after the answer came) |\n", c.FaultDelay)
	w("| Duplicate deliveries | %s of schedule deliveries made twice (half at once, half one after the other); %s of lifecycles get a stale grant and revoke after their end |\n", pct(int(c.DupRate*1000), 1000), pct(int(c.DupRate*1000), 1000))
	w("| SDK retryer | standard, %d attempts, 2 ms backoff, no retry quota |\n", c.SDKAttempts)
	w("| Seed | %d |\n", c.Seed)
	w("| Concurrency | %d HTTP clients; schedule deliveries and the sweeper run alongside |\n", c.Concurrency)
	w("| Duration | %s (slowest batch %s); %d virtual minutes driven |\n", r.Duration.Round(time.Second), r.Slowest.Round(time.Second), t.Minutes)
	w("\nFlags: `go run ./infra/soak -lifecycles %d -fault-rate %g -call-fault-rate %g -call-fault-burst %d -fault-delay %s -kinds %s -seed %d -concurrency %d -batch %d -dup-rate %g -out docs/reliability.md`.\n\n",
		c.Lifecycles, c.FaultRate, c.CallFaultRate, c.CallFaultBurst, c.FaultDelay, kindFlag(c.Kinds), c.Seed, c.Concurrency, c.Batch, c.DupRate)

	w("## Invariants\n\nChecked at the end of each batch, with faults off, every end time passed and the\n")
	w("sweeper run until it found nothing to do; read behind the system's back with fault-free\n")
	w("clients (IAM, both tables, the schedule group). The first is also checked every %d minutes\n", snapshotEvery)
	w("of virtual time while faults are on (%d snapshots, between two minutes, nothing in flight),\n", t.Snapshots)
	w("where a request whose activation stopped midway may hold access as long as its revoke\n")
	w("schedule is there.\n\n")
	w("| Invariant | Result | Checked | Violations |\n|---|---|---|---|\n")
	for _, name := range invariantOrder {
		inv := t.Invariants[name]
		if inv == nil {
			inv = &invariant{}
		}
		w("| %s | %s | %d %s | %d |\n", name, passFail(len(inv.Violations) == 0), inv.Checked, checkedUnit(name), len(inv.Violations))
	}
	for _, name := range invariantOrder {
		inv := t.Invariants[name]
		if inv == nil || len(inv.Violations) == 0 {
			continue
		}
		w("\n%s:\n\n", name)
		for i, v := range inv.Violations {
			if i == 20 {
				w("- ... %d more\n", len(inv.Violations)-20)
				break
			}
			w("- %s\n", v)
		}
	}

	w("\n## Counts\n\n| | |\n|---|---|\n")
	inj, attempts, exhausted := t.Faults.InjectedTotal(), 0, 0
	for _, s := range c.Services {
		attempts += t.Faults.AttemptsTo(s)
		exhausted += t.Faults.ExhaustedIn(s)
	}
	w("| Faults injected | **%d** (%s of %d attempts on the faulted services) |\n", inj, pct(inj, attempts), attempts)
	w("| — of which per call | %d calls failed on every attempt (%d outages started), %s waited in timeouts and lost responses |\n",
		t.Faults.CallFaultsTotal(), t.Faults.Bursts, t.Faults.Delayed.Round(time.Millisecond))
	for _, k := range c.Kinds {
		w("| — %s | %d |\n", k, t.Faults.InjectedByKind(k))
	}
	for _, s := range c.Services {
		w("| — into %s | %d in %d attempts of %d calls |\n", s, t.Faults.InjectedByService(s), t.Faults.AttemptsTo(s), t.Faults.CallsTo(s))
	}
	w("| Calls whose faults outlasted the SDK's retries (the app saw them) | **%d** of %d calls (%d IAM, %d Scheduler, %d DynamoDB) |\n",
		exhausted, sum(t.Faults.Calls), t.Faults.ExhaustedIn(faults.IAM), t.Faults.ExhaustedIn(faults.Scheduler), t.Faults.ExhaustedIn(faults.DynamoDB))
	w("| Retries | **%d** SDK retries (attempts beyond a call's first); **%.0f** app retries (`Retries` metric); **%d** redeliveries by the dispatcher (%d dead-lettered) |\n",
		t.Faults.Retries, t.Metrics["Retries"], t.Dispatch.Retried, t.Dispatch.DeadLettered)
	w("| FAILED requests | **%d** (%d because the window ended before activation completed) |\n", t.Statuses[access.StatusFailed], t.FailedWindowEnded)
	w("| Revokes at the end time | **%d by the sweeper**, %d by the revoke schedule%s |\n", t.ExpiredBySweeper, t.ExpiredBySchedule, otherSuffix(t.ExpiredByOther))
	w("| Early revokes | %d by the requester, %d by an approver, %d by an admin, %d by a work-finished event |\n",
		t.RevokedByRequester, t.RevokedByApprover, t.RevokedByAdmin, t.RevokedByEvent)
	w("| Revokes that failed and stayed ACTIVE (`revoke-failed`) | **%d** records (%.0f revoke failures counted by the functions) |\n", t.RevokeFailedRecords, t.Metrics["RevokeFailures"])
	w("| Time-outs recorded by the sweeper | %d |\n", t.TimedOutBySweeper)
	w("| Overlapping grants (ACTIVE while another request held the same access) | %d requests |\n", t.Overlaps)
	w("| ACTIVE access missing in IAM | %d drift findings recorded by the sweeper; %d at the snapshots |\n", t.DriftRecords, t.SnapshotMissing)
	w("| Schedule deliveries | %d, of which %d duplicated at once and %d duplicated one after the other (%d duplicate deliveries failed) |\n",
		t.Deliveries, t.DupConcurrent, t.DupSequential, t.DupErrors)
	w("| Stale deliveries after the end | %d grant + revoke pairs; %d work-finished events; %d handler errors |\n", t.LateDups, t.TicketEvents, t.HandlerErrors)
	w("| Sweeps | %d (%d failed); %d expiries driven (some found their schedule had just done it), %d activations, %d time-outs, %d items failed; %d grants checked for drift |\n",
		t.Sweeps, t.SweepErrors, t.Sweep.Expired, t.Sweep.Activated, t.Sweep.TimedOut, t.Sweep.Failed, t.Sweep.Checked)
	w("| Requests stored | %d (%d created although the client saw an error; %d submits not answered 201) |\n", t.Requests, t.Unanswered, t.SubmitFailed)
	w("| Audit records | %d |\n", t.AuditRecords)
	w("| Approval links | %d read from the mailbox, %d issued with the same key |\n", t.MailboxLinks, t.IssuedLinks)
	w("| Schedules left in the group at the end | %d |\n", t.SchedulesLeft)
	w("| Metrics | %s |\n", metricLine(t.Metrics))
	if d := t.MaxDurations["RevokeLag"]; d > 0 {
		w("| Longest revoke lag (virtual time past the end) | %s |\n", d)
	}

	w("\nFinal states:\n\n| Status | Requests |\n|---|---|\n")
	for _, s := range terminal {
		w("| %s | %d |\n", s, t.Statuses[s])
	}
	for _, s := range []access.Status{access.StatusPending, access.StatusApproved, access.StatusActive} {
		if t.Statuses[s] > 0 {
			w("| %s | %d |\n", s, t.Statuses[s])
		}
	}

	w("\nPlans (drawn from the seed):\n\n| Decision of a manual request | Lifecycles |\n|---|---|\n")
	for _, k := range sortedKeys(t.Decisions) {
		w("| %s | %d |\n", k, t.Decisions[k])
	}
	w("\n| Planned end | Lifecycles |\n|---|---|\n")
	for _, k := range sortedKeys(t.Endings) {
		w("| %s | %d |\n", k, t.Endings[k])
	}

	w("\nAPI answers through the gateway:\n\n| Action | Answers |\n|---|---|\n")
	for _, a := range sortedKeys(t.API) {
		codes := slices.Sorted(func(yield func(int) bool) {
			for k := range t.API[a] {
				if !yield(k) {
					return
				}
			}
		})
		var parts []string
		for _, code := range codes {
			label := http.StatusText(code)
			if code == 0 {
				label = "no answer"
			}
			parts = append(parts, fmt.Sprintf("%d× %d %s", t.API[a][code], code, label))
		}
		w("| %s | %s |\n", a, strings.Join(parts, ", "))
	}
	if len(t.Samples) > 0 {
		w("\nUnexpected answers (first %d):\n\n", len(t.Samples))
		for _, s := range t.Samples {
			w("- `%s`\n", strings.ReplaceAll(s, "`", "'"))
		}
	}

	w("\n## How it runs\n\n")
	w(howItRuns)
	return b.String()
}

func kindFlag(ks []faults.Kind) string {
	alias := map[faults.Kind]string{faults.Fail: "fail", faults.Throttle: "throttle", faults.ServerError: "500", faults.Timeout: "timeout", faults.LostResponse: "lost"}
	var out []string
	for _, k := range ks {
		out = append(out, alias[k])
	}
	return strings.Join(out, ",")
}

func checkedUnit(name string) string {
	switch name {
	case invNoStrayAccess:
		return "pieces of access in IAM (snapshots and end)"
	case invPreExisting:
		return "pre-existing grants"
	case invLedgerReleased:
		return "ledger entries"
	}
	return "requests"
}

func otherSuffix(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", %d by another actor", n)
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func metricLine(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

const howItRuns = `Each batch starts the local stack (` + "`infra/local/stack`" + `: moto_server, the tables, the
schedule group, the demo IAM principals, the five functions built by ` + "`wire.Service`" + `) with
a virtual clock, and gives two principals access before any request (grace in the
jit-ops group, the henry-ops role with the read policy attached): no revoke may take
that away. The catalog (` + "`infra/soak/catalog.go`" + `) has every provider (IAM group, managed
policy, timeboxed inline policy), every approval mode (auto, a quorum of one and of two,
break-glass), IAM users and roles, and roles that grant the same access, so grants overlap.

Every lifecycle's plan is drawn from the seed before the run: requester and role, start
now or up to 20 minutes ahead, 5 to 45 minutes of access, an optional ticket; for manual
roles the decision (approve, deny, cancel while pending, no decision until the deadline,
approve then cancel), made through the email link's page (a POST to /approvals/{token};
the first links of a batch are read from the mailbox) or the portal API; for future
starts a cancel before the start; and how the access ends (the revoke schedule, or early:
the requester, an approver, an admin, a work-finished event).

The driver moves the clock a minute at a time. At each minute it runs the due actions
through the gateway's JSON API as the acting identity (` + "`X-Dev-Identity`" + `), at most
` + "`-concurrency`" + ` at once, while the dispatcher fires the due schedules (` + "`DispatchNow`" + `), and every
five minutes the sweeper runs (` + "`SweepNow`" + `) at the same time, so users, schedules and the
sweeper race as they would in production. Schedule deliveries go through a wrapper that
delivers some twice, at once or one after the other; some lifecycles get a stale grant
and revoke delivery after their end.

Faults come from ` + "`internal/faults`" + `, smithy middleware on the functions' SDK clients only
(installed through the stack's ` + "`ConfigureAWS`" + ` option; the dispatcher standing in for the
Scheduler service and the checker use fault-free clients), in two modes. Per attempt
(` + "`-fault-rate`" + `): each attempt of an IAM, Scheduler or DynamoDB call fails with that
probability as a throttle, an HTTP 500, a timeout (the request never sent, after
` + "`-fault-delay`" + `) or, for IAM and Scheduler, a lost response (the request applied, the
answer dropped after the same delay); the SDK's three attempts retry almost all of these
away, so this mode tests the SDK path. Per call (` + "`-call-fault-rate`" + `): the fault is decided
once per call and persists over all the SDK's attempts, so the function sees it; and the
operation stays down for its next ` + "`-call-fault-burst`" + ` calls (a few seconds at most), which
outlasts the app's own four attempts. That is what drives the app's retries, activations
that give up (FAILED), revokes that fail and stay ACTIVE (` + "`revoke-failed`" + `), errors
returned to the dispatcher (which redelivers), answers of 500 through the gateway, and the
sweeper picking up what was left.

When the last lifecycle's end has passed, faults are switched off, the clock moves past
every end and deadline, and the schedules and the sweeper run until the sweeper finds
nothing due. Then the checker reads IAM (group memberships, attached and inline policies
of every demo user and role), both tables and the schedule group, and checks the
invariants above. Any violation makes ` + "`make soak`" + ` exit non-zero.

Three concessions to moto, none of which AWS needs:

- Batches: moto copies both tables on every TransactWriteItems (and keeps every copy),
  so writes slow down as the tables grow; a fresh stack per batch keeps the run bounded.
- One request at a time: moto_server serves requests on threads without a lock, and its
  TransactWriteItems restores whole-table backups when a transaction fails, so two
  concurrent writers can undo each other (the first runs of the soak caught a committed
  expire rolled back by another transaction's failure: an audit record without its state
  change). AWS APIs are atomic per request, so the functions' requests to moto are sent
  one at a time; the functions themselves still run concurrently, and their steps race.
- No lost responses for DynamoDB: the SDK gives TransactWriteItems an idempotency
  token, which DynamoDB honours on a retry and moto ignores, so on moto a lost commit
  comes back as a conflict that AWS would not report. IAM and Scheduler get them.

## Found and fixed by the soak

- **An approval at the very end of the window** (the approval deadline is capped at the
  end) was accepted, then activation found the window over: FAILED, admins alerted for
  nothing. The lifecycle now refuses an approval once the window has ended
  (` + "`internal/access/transition.go`" + `); the sweeper times the request out.
- **A cancel that wins the race against activation, when removing the granted access
  again fails**, left the request CANCELLED with access in IAM and a ledger hold, and
  nothing would ever take it away: the kept revoke schedule found a terminal request and
  did nothing. The end-time revoke now withdraws what a CANCELLED or FAILED request still
  holds (` + "`internal/app/revoke.go`" + `; ` + "`TestCancelDuringActivationWithFailingUndo`" + `).

Seen, not changed: when the auto-approve or break-glass write fails after the request was
created, the caller gets an error and the request stays PENDING (no approver is asked)
until its deadline, the end of its window, when the sweeper times it out. Nothing is
granted, so no invariant is at stake; a retry by the caller creates a new request.
`
