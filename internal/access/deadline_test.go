package access

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An approval deadline capped at the end of the window: at that instant an
// approval is refused (nothing is left to activate), a denial still counts,
// and the sweeper's time-out applies.
func TestDecisionAtEndOfWindow(t *testing.T) {
	r := baseRequest(StatusPending, ModeManual)
	r.StartAt, r.EndAt, r.ApprovalDeadline = t0, t0.Add(10*time.Minute), t0.Add(10*time.Minute)

	_, err := Transition(r, Event{Type: EventApprove, Actor: "carol@example.com"}, r.EndAt)
	require.Error(t, err)
	assert.Equal(t, KindConflict, KindOf(err))

	next, err := Transition(r, Event{Type: EventApprove, Actor: "carol@example.com"}, r.EndAt.Add(-time.Second))
	require.NoError(t, err, "a second before the end is still in time")
	assert.Equal(t, StatusApproved, next.Status)

	_, err = Transition(r, Event{Type: EventDeny, Actor: "carol@example.com"}, r.EndAt)
	assert.Equal(t, KindConflict, KindOf(err), "from the deadline on, no decision counts")
	_, err = Transition(r, Event{Type: EventTimeout, Actor: "system:sweeper"}, r.EndAt.Add(-time.Second))
	assert.Equal(t, KindConflict, KindOf(err), "no time-out before the deadline")
	next, err = Transition(r, Event{Type: EventTimeout, Actor: "system:sweeper"}, r.EndAt)
	require.NoError(t, err)
	assert.Equal(t, StatusTimedOut, next.Status)
}
