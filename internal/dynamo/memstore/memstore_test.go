package memstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/dynamo/memstore"
	"github.com/jitaccess/jit/internal/dynamo/storetest"
)

var _ app.Store = (*memstore.Store)(nil)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) app.Store { return memstore.New() })
}

func TestAllRequestsAndVerifyAudit(t *testing.T) {
	s := memstore.New()
	ctx := t.Context()
	b, recB := storetest.Submit(t, "b", "alice", []string{"bob"}, 1, storetest.T0.Add(time.Hour))
	a, recA := storetest.Submit(t, "a", "alice", []string{"bob"}, 1, storetest.T0.Add(time.Hour))
	require.NoError(t, s.Create(ctx, b, recB))
	require.NoError(t, s.Create(ctx, a, recA))
	storetest.Apply(t, s, a, access.Event{Type: access.EventApprove, Actor: "bob"}, storetest.T0)

	all := s.AllRequests()
	require.Len(t, all, 2)
	require.Equal(t, "a", all[0].ID)
	require.Equal(t, access.StatusApproved, all[0].Status)
	require.Equal(t, b, all[1])

	// Callers cannot change what is stored through what they got back.
	all[1].Approvers[0] = "mallory"
	got, err := s.Get(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, []string{"bob"}, got.Approvers)

	require.NoError(t, s.VerifyAudit(ctx, "a"))
	require.True(t, access.IsKind(s.VerifyAudit(ctx, "nope"), access.KindNotFound))
}
