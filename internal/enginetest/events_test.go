package enginetest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
)

const eventsDir = "../../events"

func readEvent(t *testing.T, name string) json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(eventsDir, name))
	require.NoError(t, err)
	require.True(t, json.Valid(raw), "%s is valid JSON", name)
	return raw
}

// snapshot is the version of every request and the access in IAM: what
// must not change when an event is ignored.
func (e *env) snapshot() (map[string]int, map[string]bool) {
	e.t.Helper()
	versions := map[string]int{}
	for _, id := range e.allIDs() {
		versions[id] = e.get(id).Version
	}
	return versions, e.iamAccess()
}

const ticketActor = "event:jit.tickets/TicketClosed"

// TestTicketClosedEvent feeds events/revoke-ticket-closed.json through the
// revoke handler: the ACTIVE grants bound to OPS-1234 are revoked with the
// event as the actor, the pending one bound to it is cancelled, and grants
// bound to other tickets (or none) are untouched. A second delivery of the
// same event changes nothing.
func TestTicketClosedEvent(t *testing.T) {
	e := newEnv(t)
	groupGrant := e.submit(alice, "ops-group", app.SubmitInput{Ticket: "OPS-1234"})
	policyGrant := e.submit(erin, "read-policy", app.SubmitInput{Ticket: "OPS-1234"})
	otherTicket := e.submit(bob, "reports-timeboxed", app.SubmitInput{Ticket: "OPS-9999"})
	noTicket := e.submit(bob, "ops-group", app.SubmitInput{})
	pending := e.submit(alice, "ops-manual", app.SubmitInput{Ticket: "OPS-1234"})
	require.Equal(t, access.StatusPending, pending.Status)
	for _, r := range []access.Request{groupGrant, policyGrant, otherTicket, noTicket} {
		require.Equal(t, access.StatusActive, r.Status)
	}

	e.clock.Advance(40 * time.Minute)
	require.NoError(t, e.revoke(e.ctx, readEvent(t, "revoke-ticket-closed.json")))

	for _, r := range []access.Request{groupGrant, policyGrant} {
		got := e.get(r.ID)
		assert.Equal(t, access.StatusRevoked, got.Status, r.RoleID)
		assert.Equal(t, ticketActor, got.EndedBy)
		assert.False(t, e.has(r), "%s: access gone", r.RoleID)
		assert.False(t, e.hasSchedule(app.ActionRevoke, r.ID), "the revoke schedule is removed")
		recs := e.auditRecords(r.ID)
		last := recs[len(recs)-1]
		assert.Equal(t, access.EventRevoke, last.Action)
		assert.Equal(t, ticketActor, last.Actor)
		assert.Equal(t, []string{"submit", "auto-approve", "activate", "revoke"}, e.actions(r.ID))
	}
	got := e.get(pending.ID)
	assert.Equal(t, access.StatusCancelled, got.Status)
	assert.Equal(t, ticketActor, got.EndedBy)
	for _, r := range []access.Request{otherTicket, noTicket} {
		got := e.get(r.ID)
		assert.Equal(t, access.StatusActive, got.Status, "%s untouched", r.RoleID)
		assert.Equal(t, r.Version, got.Version)
		assert.True(t, e.has(r))
	}
	assert.True(t, e.inGroup("bob"))
	e.requireInvariant(false)

	versions, granted := e.snapshot()
	require.NoError(t, e.revoke(e.ctx, readEvent(t, "revoke-ticket-closed.json")), "a redelivered event")
	v2, g2 := e.snapshot()
	assert.Equal(t, versions, v2)
	assert.Equal(t, granted, g2)
}

// TestMalformedAndUnknownEvents: whatever reaches the revoke and grant
// handlers that is not ours, or is early, or names nothing, returns nil (so
// it is not redelivered forever) and changes nothing.
func TestMalformedAndUnknownEvents(t *testing.T) {
	e := newEnv(t)
	r := e.submit(alice, "ops-group", app.SubmitInput{Ticket: "OPS-1234"})
	future := e.submit(bob, "read-policy", app.SubmitInput{StartAt: t0.Add(2 * time.Hour)})
	require.Equal(t, access.StatusApproved, future.Status)
	e.clock.Advance(10 * time.Minute)
	versions, granted := e.snapshot()

	ticket := func(detailType, source, detail string) string {
		return `{"version":"0","id":"x","detail-type":"` + detailType + `","source":"` + source +
			`","account":"123456789012","time":"2030-01-02T09:10:00Z","region":"us-east-1","resources":[],"detail":` + detail + `}`
	}
	revokeEvents := map[string]string{
		"not JSON":                     `revoke it all`,
		"empty":                        ``,
		"empty object":                 `{}`,
		"JSON array":                   `[{"action":"revoke","requestId":"` + r.ID + `"}]`,
		"no request id":                `{"action":"revoke"}`,
		"grant action":                 `{"action":"grant","requestId":"` + r.ID + `"}`,
		"unknown action":               `{"action":"delete","requestId":"` + r.ID + `"}`,
		"unknown field":                `{"action":"revoke","requestId":"` + r.ID + `","force":true}`,
		"trailing data":                `{"action":"revoke","requestId":"` + r.ID + `"} {}`,
		"bad request id":               `{"action":"revoke","requestId":"../../etc"}`,
		"unknown request":              `{"action":"revoke","requestId":"01JZZZZZZZZZZZZZZZZZZZZZZZ"}`,
		"revoke before the end":        `{"action":"revoke","requestId":"` + r.ID + `"}`,
		"revoke of approved, too soon": `{"action":"revoke","requestId":"` + future.ID + `"}`,
		"event without detail":         ticket("TicketClosed", "jit.tickets", `{}`),
		"event with string detail":     ticket("TicketClosed", "jit.tickets", `"OPS-1234"`),
		"event with blank ticket":      ticket("TicketClosed", "jit.tickets", `{"ticket":"  "}`),
		"event for unknown ticket":     ticket("TicketClosed", "jit.tickets", `{"ticket":"OPS-0000"}`),
		"event for unknown request":    ticket("WorkDone", "jit.pipeline", `{"requestId":"01JZZZZZZZZZZZZZZZZZZZZZZZ"}`),
		"event with oversized ticket":  ticket("TicketClosed", "jit.tickets", `{"ticket":"`+strings.Repeat("A", 200)+`"}`),
		"unrelated event":              ticket("EC2 Instance State-change Notification", "aws.ec2", `{"instance-id":"i-1","state":"stopped"}`),
	}
	for name, raw := range revokeEvents {
		assert.NoError(t, e.revoke(e.ctx, json.RawMessage(raw)), "revoke handler: %s", name)
	}
	grantEvents := map[string]string{
		"not JSON":             `grant it`,
		"revoke action":        `{"action":"revoke","requestId":"` + future.ID + `"}`,
		"unknown request":      `{"action":"grant","requestId":"01JZZZZZZZZZZZZZZZZZZZZZZZ"}`,
		"an EventBridge event": ticket("TicketClosed", "jit.tickets", `{"ticket":"OPS-1234"}`),
		"grant of active":      `{"action":"grant","requestId":"` + r.ID + `"}`,
	}
	for name, raw := range grantEvents {
		assert.NoError(t, e.grant(e.ctx, json.RawMessage(raw)), "grant handler: %s", name)
	}
	v2, g2 := e.snapshot()
	assert.Equal(t, versions, v2, "no request changed")
	assert.Equal(t, granted, g2, "nothing changed in IAM")
	assert.Equal(t, access.StatusActive, e.get(r.ID).Status)
	e.requireInvariant(false)
}

// sampleID is the request id in events/grant-schedule.json and
// events/revoke-schedule.json.
const sampleID = "01JGZ5Q3K7W8XJ2M4N6P8R0T2V"

// TestScheduleAndRuleEventContracts feeds every sample event of the
// schedules and rules in events/ through the real handler, as the Lambda
// runtime would (raw JSON into lambda.NewHandler), and checks that the
// schedule samples are exactly what the system's own schedules deliver.
func TestScheduleAndRuleEventContracts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	require.NoError(t, err)
	want := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		switch {
		case strings.HasPrefix(name, "intake-"), strings.HasPrefix(name, "approve-"):
			continue // HTTP events: internal/api's contract tests
		case strings.HasPrefix(name, "grant-"), strings.HasPrefix(name, "revoke-"), strings.HasPrefix(name, "sweep-"):
			want[name] = true
		default:
			t.Errorf("events/%s: no handler is known for it; add it to this contract test", name)
		}
	}
	e := newEnv(t)
	seen := map[string]bool{}
	invoke := func(handler any, name string) []byte {
		t.Helper()
		seen[name] = true
		out, err := lambda.NewHandler(handler).Invoke(e.ctx, readEvent(t, name))
		require.NoError(t, err, name)
		return out
	}

	e.useID(sampleID)
	start := t0.Add(time.Hour)
	r := e.submit(bob, "ops-group", app.SubmitInput{StartAt: start, Duration: 2 * time.Hour})
	require.Equal(t, sampleID, r.ID)
	require.Equal(t, access.StatusApproved, r.Status)
	sch, ok := e.schedule(app.ActionGrant, r.ID)
	require.True(t, ok, "the grant schedule is created for the start")
	assert.Equal(t, "at(2030-01-02T10:00:00)", aws.ToString(sch.ScheduleExpression))
	assert.JSONEq(t, string(readEvent(t, "grant-schedule.json")), aws.ToString(sch.Target.Input), "the sample is what the grant schedule delivers")

	e.clock.Set(start)
	invoke(e.grant, "grant-schedule.json")
	r = e.get(sampleID)
	require.Equal(t, access.StatusActive, r.Status)
	assert.True(t, e.inGroup("bob"))
	sch, ok = e.schedule(app.ActionRevoke, r.ID)
	require.True(t, ok)
	assert.JSONEq(t, string(readEvent(t, "revoke-schedule.json")), aws.ToString(sch.Target.Input), "the sample is what the revoke schedule delivers")

	ticketed := e.submit(alice, "ops-group", app.SubmitInput{Ticket: "OPS-1234"})
	e.clock.Advance(30 * time.Minute)
	invoke(e.revoke, "revoke-ticket-closed.json")
	assert.Equal(t, access.StatusRevoked, e.get(ticketed.ID).Status)
	assert.Equal(t, access.StatusActive, e.get(sampleID).Status)

	out := invoke(e.sweep, "sweep-rate.json")
	var rep app.SweepReport
	require.NoError(t, json.Unmarshal(out, &rep))
	assert.Equal(t, 1, rep.Checked, "the sweep checked the one active grant")

	e.clock.Set(r.EndAt)
	invoke(e.revoke, "revoke-schedule.json")
	assert.Equal(t, access.StatusExpired, e.get(sampleID).Status)
	assert.False(t, e.inGroup("bob"))

	assert.Equal(t, want, seen, "every schedule and rule sample was fed through its handler")
	e.requireInvariant(false)
}
