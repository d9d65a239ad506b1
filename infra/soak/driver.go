package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jitaccess/jit/infra/local/stack"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/faults"
)

// decision is what the approvers of a manual request do.
type decision int

const (
	decideNone              decision = iota // auto-approved or break-glass: nobody is asked
	decideApprove                           // the quorum approves
	decideDeny                              // one approver denies
	decideCancel                            // the requester cancels while it is pending
	decideIgnore                            // nobody decides: it times out
	decideApproveThenCancel                 // approved, then cancelled by the requester
)

var decisionNames = map[decision]string{
	decideNone: "none asked", decideApprove: "approve", decideDeny: "deny", decideCancel: "cancel while pending",
	decideIgnore: "no decision (time-out)", decideApproveThenCancel: "approve, then cancel",
}

// ending is how active access is meant to end.
type ending int

const (
	endExpire    ending = iota // the revoke schedule at the end time
	endRequester               // "I'm done" from the requester
	endApprover                // an approver revokes
	endAdmin                   // an admin revokes
	endTicket                  // a work-finished event for the request's ticket
)

var endingNames = map[ending]string{
	endExpire: "end time", endRequester: "early revoke by the requester", endApprover: "early revoke by an approver",
	endAdmin: "early revoke by an admin", endTicket: "work-finished event",
}

// lifecycle is the plan of one request, in minutes of virtual time, and
// what became of it.
type lifecycle struct {
	N           int
	Requester   string
	Role        catalog.Role
	Arrive      int // minute of the batch it is submitted at
	StartIn     int // minutes after submit it starts (0: now)
	Duration    int // minutes
	Ticket      string
	Decision    decision
	DecideAfter int     // minutes after submit
	ByLink      [2]bool // per approval: the email link (else the portal API)
	SecondGap   int     // minutes between the two approvals of a quorum of two
	CancelAt    int     // minutes after submit the requester cancels an approved future start (0: never)
	Ending      ending
	RevokeAfter int // minutes after the start the early revoke comes
	LateDup     int // minutes after the end a stale grant and revoke are delivered (0: none)

	ID          string
	Acks        []ack // the answers to its decisions, cancels and revokes
	Submitted   int   // HTTP status of the submit
	SubmittedAt int   // minute of the batch it was submitted at
	Approvers   []string
	Quorum      int
	Deadline    time.Time
}

func (l *lifecycle) end() int { return l.Arrive + l.StartIn + l.Duration }

// ack is the gateway's answer to one action of a lifecycle, by actor.
type ack struct {
	Action access.EventType
	Actor  string
	Status int
}

// makePlans draws every lifecycle's plan from the seed, before anything runs.
func makePlans(cat *catalog.Catalog, cfg Config) []*lifecycle {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x50a4))
	var ids []string
	for _, id := range sortedKeys(cat.Principals) {
		if len(cat.RolesFor(id)) > 0 {
			ids = append(ids, id)
		}
	}
	perMinute := max(1, cfg.Concurrency)
	out := make([]*lifecycle, cfg.Lifecycles)
	for n := range out {
		l := &lifecycle{N: n + 1, Arrive: (n % cfg.Batch) / perMinute}
		l.Requester = ids[rng.IntN(len(ids))]
		roles := cat.RolesFor(l.Requester)
		l.Role = roles[rng.IntN(len(roles))]
		if rng.Float64() < 0.3 {
			l.StartIn = 2 + rng.IntN(19)
		}
		l.Duration = 5 + rng.IntN(41)
		if rng.Float64() < 0.2 {
			l.Ticket = fmt.Sprintf("SOAK-%d", l.N)
		}
		if l.Role.Mode() == access.ModeManual {
			switch x := rng.Float64(); {
			case x < 0.65:
				l.Decision = decideApprove
			case x < 0.75:
				l.Decision = decideDeny
			case x < 0.85:
				l.Decision = decideCancel
			case x < 0.93:
				l.Decision = decideIgnore
			default:
				l.Decision = decideApproveThenCancel
			}
			l.DecideAfter = 1 + rng.IntN(8)
			l.ByLink = [2]bool{rng.Float64() < 0.5, rng.Float64() < 0.5}
			l.SecondGap = rng.IntN(3)
		} else if l.StartIn >= 2 && rng.Float64() < 0.1 {
			l.CancelAt = 1 + rng.IntN(l.StartIn) // up to the start: racing the grant schedule
		}
		switch x := rng.Float64(); {
		case x < 0.70:
			l.Ending = endExpire
		case x < 0.85:
			l.Ending = endRequester
		case x < 0.90:
			l.Ending = endApprover
		case x < 0.95:
			l.Ending = endAdmin
		case l.Ticket != "":
			l.Ending = endTicket
		default:
			l.Ending = endRequester
		}
		l.RevokeAfter = 1 + rng.IntN(l.Duration-1)
		if rng.Float64() < cfg.DupRate {
			l.LateDup = 1 + rng.IntN(5)
		}
		out[n] = l
	}
	return out
}

// step is one action of one lifecycle at one minute.
type step struct {
	lc *lifecycle
	fn func(ctx context.Context)
}

// driver runs one batch: it moves the virtual clock minute by minute; at
// each minute it runs the lifecycles' due actions through the gateway
// (bounded by Concurrency), fires the due schedules (DispatchNow) and, every
// five minutes, the sweeper, all at the same time, as they would meet in
// production.
type driver struct {
	cfg    Config
	seed   uint64 // the batch's
	st     *stack.Stack
	clk    *clock
	inj    *faults.Injector
	base   time.Time
	http   *http.Client
	tokens app.Tokens
	grant  func(context.Context, json.RawMessage) error
	revoke func(context.Context, json.RawMessage) error
	plans  []*lifecycle

	mu    sync.Mutex
	tick  int
	steps map[int][]step

	api            map[string]map[int]int // action -> HTTP status -> count
	samples        []string               // unexpected answers, the first few
	sweeps         int
	sweepErrors    int
	sweep          app.SweepReport
	dispatchErrors int
	lateDups       int
	handlerErrors  int // errors from the stale deliveries and work-finished events
	ticketEvents   int
	mailboxLinks   int
	issuedLinks    int
	minutes        int
	settleRounds   int
	snapshots      int
	snapChecked    int
	snapMissing    int
	snapViolations []string
	mailboxReads   int
}

func newDriver(ctx context.Context, cfg Config, st *stack.Stack, clk *clock, inj *faults.Injector, plans []*lifecycle, seed uint64) (*driver, error) {
	log := slog.New(slog.NewTextHandler(cfg.Log, nil))
	d := &driver{
		cfg: cfg, seed: seed, st: st, clk: clk, inj: inj, plans: plans,
		base:   clk.Now(),
		http:   &http.Client{Timeout: 2 * time.Minute},
		tokens: st.Service(config.Approve).Tokens,
		grant:  api.GrantHandler(st.Service(config.Grant), log.With("fn", "soak-grant")),
		revoke: api.RevokeHandler(st.Service(config.Revoke), log.With("fn", "soak-revoke")),
		steps:  map[int][]step{},
		api:    map[string]map[int]int{},
	}
	if err := d.preExisting(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// at plans fn for lc at minute t (never earlier than the next minute).
func (d *driver) at(t int, lc *lifecycle, fn func(ctx context.Context)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if t <= d.tick {
		t = d.tick + 1
	}
	d.steps[t] = append(d.steps[t], step{lc, fn})
}

func (d *driver) now() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tick
}

func (d *driver) run(ctx context.Context) error {
	horizon := 0
	for _, lc := range d.plans {
		d.at(lc.Arrive, lc, func(ctx context.Context) { d.submit(ctx, lc) })
		horizon = max(horizon, lc.end()+lc.LateDup+2)
	}
	// The sweeper's phase within its five minutes differs per batch.
	phase := int(d.seed % 5)
	for t := 0; ; t++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.mu.Lock()
		d.tick = t
		due := d.steps[t]
		delete(d.steps, t)
		left := len(d.steps)
		d.mu.Unlock()
		if t > horizon && len(due) == 0 && left == 0 {
			d.minutes = t
			return nil
		}
		d.clk.Set(d.base.Add(time.Duration(t) * time.Minute))

		var wg sync.WaitGroup
		wg.Go(func() { d.dispatch(ctx) })
		if t%5 == phase {
			wg.Go(func() { d.sweepOnce(ctx) })
		}
		// A lifecycle's actions of one minute run in order, on one worker.
		var order []*lifecycle
		byLC := map[*lifecycle][]step{}
		for _, s := range due {
			if byLC[s.lc] == nil {
				order = append(order, s.lc)
			}
			byLC[s.lc] = append(byLC[s.lc], s)
		}
		sem := make(chan struct{}, d.cfg.Concurrency)
		for _, lc := range order {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				for _, s := range byLC[lc] {
					s.fn(ctx)
				}
			})
		}
		wg.Wait()
		if t%snapshotEvery == snapshotEvery-1 {
			if err := d.snapshot(ctx, t); err != nil {
				return fmt.Errorf("snapshot at minute %d: %w", t, err)
			}
		}
	}
}

// snapshotEvery is how often, in minutes, the run checks IAM against the
// ledger while faults are on.
const snapshotEvery = 10

func (d *driver) dispatch(ctx context.Context) {
	// A generous bound: only a target that never stops failing reaches it.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if _, err := d.st.DispatchNow(ctx); err != nil {
		d.mu.Lock()
		d.dispatchErrors++
		d.mu.Unlock()
	}
}

func (d *driver) sweepOnce(ctx context.Context) app.SweepReport {
	rep, err := d.st.SweepNow(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweeps++
	if err != nil {
		d.sweepErrors++
	}
	d.sweep.Expired += rep.Expired
	d.sweep.Activated += rep.Activated
	d.sweep.TimedOut += rep.TimedOut
	d.sweep.Failed += rep.Failed
	d.sweep.Drift += rep.Drift
	d.sweep.Checked += rep.Checked
	d.sweep.Overdue += rep.Overdue
	return rep
}

// settle runs with faults off: past every end time, it fires the due
// schedules and runs the sweeper until the sweeper finds nothing to do.
func (d *driver) settle(ctx context.Context) error {
	d.clk.Set(d.clk.Now().Add(10 * time.Minute))
	store := d.st.Store()
	for round := 1; round <= 20; round++ {
		d.settleRounds = round
		fired, err := d.st.DispatchNow(ctx)
		if err != nil {
			return fmt.Errorf("dispatch: %w", err)
		}
		rep := d.sweepOnce(ctx)
		due := 0
		for _, s := range []access.Status{access.StatusActive, access.StatusApproved, access.StatusPending} {
			rs, _, err := store.ListDue(ctx, s, d.clk.Now(), 10, "")
			if err != nil {
				return fmt.Errorf("list due: %w", err)
			}
			due += len(rs)
		}
		if due == 0 && fired == 0 && rep.Expired+rep.Activated+rep.TimedOut+rep.Failed == 0 {
			return nil
		}
		d.clk.Set(d.clk.Now().Add(5 * time.Minute))
	}
	return nil // what is left shows in the invariants
}

// ---------------------------------------------------------------------------
// The lifecycles' actions, through the local gateway.

func (d *driver) submit(ctx context.Context, lc *lifecycle) {
	body := map[string]string{
		"roleId":        lc.Role.ID,
		"justification": fmt.Sprintf("soak lifecycle %d: routine maintenance of the platform", lc.N),
		"duration":      fmt.Sprintf("%dm", lc.Duration),
	}
	if lc.StartIn > 0 {
		body["startAt"] = d.clk.Now().Add(time.Duration(lc.StartIn) * time.Minute).Format(time.RFC3339)
	}
	if lc.Ticket != "" {
		body["ticket"] = lc.Ticket
	}
	status, b := d.call(ctx, "submit", lc.Requester, http.MethodPost, "/requests", body)
	lc.Submitted = status
	if status != http.StatusCreated {
		return // whatever the store holds is still checked at the end
	}
	var r stack.Request
	if err := json.Unmarshal(b, &r); err != nil {
		d.sample("submit: undecodable answer: %v", err)
		return
	}
	lc.ID, lc.Approvers, lc.Quorum, lc.Deadline = r.ID, r.Approvers, r.Quorum, r.ApprovalDeadline
	t := d.now()
	lc.SubmittedAt = t
	switch lc.Decision {
	case decideApprove, decideApproveThenCancel:
		d.at(t+lc.DecideAfter, lc, func(ctx context.Context) { d.approve(ctx, lc, 0) })
	case decideDeny:
		d.at(t+lc.DecideAfter, lc, func(ctx context.Context) { d.deny(ctx, lc) })
	case decideCancel:
		d.at(t+lc.DecideAfter, lc, func(ctx context.Context) { d.cancel(ctx, lc) })
	}
	if lc.CancelAt > 0 {
		d.at(t+lc.CancelAt, lc, func(ctx context.Context) { d.cancel(ctx, lc) })
	}
	start := t + lc.StartIn
	if lc.Ending != endExpire {
		d.at(start+lc.RevokeAfter, lc, func(ctx context.Context) { d.endEarly(ctx, lc) })
	}
	if lc.LateDup > 0 {
		d.at(start+lc.Duration+lc.LateDup, lc, func(ctx context.Context) { d.lateDuplicate(ctx, lc) })
	}
}

func (d *driver) approve(ctx context.Context, lc *lifecycle, i int) {
	if i >= len(lc.Approvers) {
		return
	}
	last := i+1 >= lc.Quorum
	if last && lc.Decision == decideApproveThenCancel && lc.StartIn == 0 {
		// The requester cancels while the approval activates the access.
		var wg sync.WaitGroup
		wg.Go(func() { d.cancel(ctx, lc) })
		d.decide(ctx, lc, lc.Approvers[i], "approve", lc.ByLink[min(i, 1)])
		wg.Wait()
		return
	}
	d.decide(ctx, lc, lc.Approvers[i], "approve", lc.ByLink[min(i, 1)])
	switch {
	case !last && lc.SecondGap == 0:
		d.approve(ctx, lc, i+1)
	case !last:
		d.at(d.now()+lc.SecondGap, lc, func(ctx context.Context) { d.approve(ctx, lc, i+1) })
	case lc.Decision == decideApproveThenCancel:
		// Cancelled at the start, racing the grant schedule.
		d.at(lc.SubmittedAt+lc.StartIn, lc, func(ctx context.Context) { d.cancel(ctx, lc) })
	}
}

func (d *driver) deny(ctx context.Context, lc *lifecycle) {
	if len(lc.Approvers) > 0 {
		d.decide(ctx, lc, lc.Approvers[0], "deny", lc.ByLink[0])
	}
}

// decide records a decision through the email link's page (a POST, as the
// page's button sends) or through the portal API.
func (d *driver) decide(ctx context.Context, lc *lifecycle, approver, verdict string, byLink bool) {
	ev := access.EventType(verdict)
	if !byLink {
		status, _ := d.call(ctx, verdict, approver, http.MethodPost, "/requests/"+lc.ID+"/"+verdict, map[string]string{"comment": "decided by the soak"})
		d.ack(lc, ev, approver, status)
		return
	}
	link := d.mailboxLink(lc, approver)
	if link == "" {
		// The link the email carries, signed with the same key: reading
		// moto's whole mailbox for every decision would cost more than
		// the run itself.
		tok, err := d.tokens.Issue(ctx, access.ApprovalClaims{RequestID: lc.ID, Approver: approver, ExpiresAt: lc.Deadline})
		if err != nil {
			d.sample("issue approval link: %v", err)
			status, _ := d.call(ctx, verdict, approver, http.MethodPost, "/requests/"+lc.ID+"/"+verdict, map[string]string{"comment": "decided by the soak"})
			d.ack(lc, ev, approver, status)
			return
		}
		d.mu.Lock()
		d.issuedLinks++
		d.mu.Unlock()
		link = d.st.URL() + "/approvals/" + tok
	}
	status, _ := d.form(ctx, verdict+" (link)", link, url.Values{"decision": {verdict}, "comment": {"decided by the soak"}})
	d.ack(lc, ev, approver, status)
}

// ack records the answer to one of lc's actions, for the checker.
func (d *driver) ack(lc *lifecycle, action access.EventType, actor string, status int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	lc.Acks = append(lc.Acks, ack{Action: action, Actor: actor, Status: status})
}

// mailboxLink reads the approval link from the emails moto accepted, for
// the first few link decisions of a batch (while the mailbox is small).
func (d *driver) mailboxLink(lc *lifecycle, approver string) string {
	d.mu.Lock()
	if d.mailboxReads >= 3 {
		d.mu.Unlock()
		return ""
	}
	d.mailboxReads++
	d.mu.Unlock()
	mails, err := d.st.Mailbox(approver)
	if err != nil {
		d.sample("mailbox: %v", err)
		return ""
	}
	for _, m := range mails {
		if !strings.HasPrefix(m.Subject, "Approval needed") || !strings.Contains(m.HTML+m.Text, lc.ID) {
			continue
		}
		for _, l := range m.Links {
			if strings.Contains(l.URL, "/approvals/") {
				d.mu.Lock()
				d.mailboxLinks++
				d.mu.Unlock()
				return l.URL
			}
		}
	}
	return ""
}

func (d *driver) cancel(ctx context.Context, lc *lifecycle) {
	status, _ := d.call(ctx, "cancel", lc.Requester, http.MethodPost, "/requests/"+lc.ID+"/cancel", map[string]string{"comment": "not needed any more"})
	d.ack(lc, access.EventCancel, lc.Requester, status)
}

func (d *driver) endEarly(ctx context.Context, lc *lifecycle) {
	as := lc.Requester
	switch lc.Ending {
	case endApprover:
		as = "admin@example.com"
		if len(lc.Approvers) > 0 {
			as = lc.Approvers[0]
		}
	case endAdmin:
		as = "admin@example.com"
	case endTicket:
		ev := fmt.Sprintf(`{"source":"soak.tickets","detail-type":"Work Finished","detail":{"ticket":%q}}`, lc.Ticket)
		err := d.revoke(ctx, json.RawMessage(ev))
		d.mu.Lock()
		d.ticketEvents++
		if err != nil {
			d.handlerErrors++
		}
		d.mu.Unlock()
		return
	}
	status, _ := d.call(ctx, "revoke", as, http.MethodPost, "/requests/"+lc.ID+"/revoke", map[string]string{"comment": "work done"})
	d.ack(lc, access.EventRevoke, as, status)
}

// lateDuplicate delivers the grant and the revoke schedule's payloads again
// after the end, as a late duplicate from the Scheduler: both must find the
// request done and change nothing.
func (d *driver) lateDuplicate(ctx context.Context, lc *lifecycle) {
	var errs int
	for _, h := range []struct {
		action string
		fn     func(context.Context, json.RawMessage) error
	}{{app.ActionRevoke, d.revoke}, {app.ActionGrant, d.grant}} {
		p := fmt.Sprintf(`{"action":%q,"requestId":%q}`, h.action, lc.ID)
		if err := h.fn(ctx, json.RawMessage(p)); err != nil {
			errs++
		}
	}
	d.mu.Lock()
	d.lateDups++
	d.handlerErrors += errs
	d.mu.Unlock()
}

// call sends a JSON API request as identity and returns the status and body.
func (d *driver) call(ctx context.Context, action, identity, method, path string, body any) (int, []byte) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.st.URL()+path, r)
	if err != nil {
		d.sample("%s: %v", action, err)
		return 0, nil
	}
	req.Header.Set(stack.DevIdentityHeader, identity)
	req.Header.Set("Content-Type", "application/json")
	return d.do(action, req)
}

// form posts an approval page's form.
func (d *driver) form(ctx context.Context, action, link string, v url.Values) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, link, strings.NewReader(v.Encode()))
	if err != nil {
		d.sample("%s: %v", action, err)
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return d.do(action, req)
}

func (d *driver) do(action string, req *http.Request) (int, []byte) {
	resp, err := d.http.Do(req)
	status := 0
	var b []byte
	if err == nil {
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	d.mu.Lock()
	if d.api[action] == nil {
		d.api[action] = map[int]int{}
	}
	d.api[action][status]++
	d.mu.Unlock()
	switch {
	case err != nil:
		d.sample("%s %s: %v", req.Method, req.URL.Path, err)
	case status == http.StatusBadRequest || status == http.StatusUnauthorized || status == 0:
		d.sample("%s %s: %d %s", req.Method, redact(req.URL.Path), status, strings.TrimSpace(string(b)))
	}
	return status, b
}

func redact(path string) string {
	if strings.HasPrefix(path, "/approvals/") {
		return "/approvals/…"
	}
	return path
}

func (d *driver) sample(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.samples) < 10 {
		d.samples = append(d.samples, fmt.Sprintf(format, args...))
	}
}

// fill copies the driver's counts into the batch result.
func (d *driver) fill(br *batchResult) {
	d.mu.Lock()
	defer d.mu.Unlock()
	br.API = d.api
	br.Samples = slices.Clone(d.samples)
	br.Sweeps, br.SweepErrors, br.Sweep = d.sweeps, d.sweepErrors, d.sweep
	br.DispatchErrors = d.dispatchErrors
	br.LateDups, br.HandlerErrors, br.TicketEvents = d.lateDups, d.handlerErrors, d.ticketEvents
	br.MailboxLinks, br.IssuedLinks = d.mailboxLinks, d.issuedLinks
	br.Minutes, br.SettleRounds = d.minutes, d.settleRounds
	for _, lc := range d.plans {
		br.Decisions[decisionNames[lc.Decision]]++
		br.Endings[endingNames[lc.Ending]]++
		if lc.Submitted != http.StatusCreated {
			br.SubmitFailed++
		}
	}
}
