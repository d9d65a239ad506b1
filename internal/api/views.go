package api

import (
	"time"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/catalog"
)

type requestView struct {
	ID               string            `json:"id"`
	Requester        string            `json:"requester"`
	Principal        string            `json:"principal"`
	RoleID           string            `json:"roleId"`
	Provider         string            `json:"provider"`
	Justification    string            `json:"justification"`
	Ticket           string            `json:"ticket,omitempty"`
	Status           access.Status     `json:"status"`
	Mode             access.Mode       `json:"mode"`
	StartAt          time.Time         `json:"startAt"`
	EndAt            time.Time         `json:"endAt"`
	ApprovalDeadline time.Time         `json:"approvalDeadline"`
	Approvers        []string          `json:"approvers"`
	Quorum           int               `json:"quorum"`
	Approvals        []access.Approval `json:"approvals"`
	ReviewRequired   bool              `json:"reviewRequired"`
	Version          int               `json:"version"`
	CreatedAt        time.Time         `json:"createdAt"`
	UpdatedAt        time.Time         `json:"updatedAt"`
	LastError        string            `json:"lastError,omitempty"`
	RevokeAttempts   int               `json:"revokeAttempts,omitempty"`
	EndedBy          string            `json:"endedBy,omitempty"`
	EndReason        string            `json:"endReason,omitempty"`
}

func newRequestView(r access.Request) requestView {
	approvals := r.Approvals
	if approvals == nil {
		approvals = []access.Approval{}
	}
	approvers := r.Approvers
	if approvers == nil {
		approvers = []string{}
	}
	return requestView{
		ID: r.ID, Requester: r.Requester, Principal: r.Principal.String(), RoleID: r.RoleID,
		Provider: string(r.Provider), Justification: r.Justification, Ticket: r.Ticket,
		Status: r.Status, Mode: r.Mode, StartAt: r.StartAt, EndAt: r.EndAt, ApprovalDeadline: r.ApprovalDeadline,
		Approvers: approvers, Quorum: r.Quorum, Approvals: approvals, ReviewRequired: r.ReviewRequired,
		Version: r.Version, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, LastError: r.LastError,
		RevokeAttempts: r.RevokeAttempts, EndedBy: r.EndedBy, EndReason: r.EndReason,
	}
}

func views(rs []access.Request) []requestView {
	out := make([]requestView, 0, len(rs))
	for _, r := range rs {
		out = append(out, newRequestView(r))
	}
	return out
}

type roleView struct {
	ID               string `json:"id"`
	Description      string `json:"description"`
	Provider         string `json:"provider"`
	DefaultDuration  string `json:"defaultDuration"`
	MaxDuration      string `json:"maxDuration"`
	Approvals        int    `json:"approvals"`
	TicketRequired   bool   `json:"ticketRequired"`
	TicketPattern    string `json:"ticketPattern,omitempty"`
	MinJustification int    `json:"minJustification"`
	AutoApprove      bool   `json:"autoApprove"`
	BreakGlass       bool   `json:"breakGlass"`
}

func newRoleView(r catalog.Role) roleView {
	return roleView{
		ID: r.ID, Description: r.Description, Provider: string(r.Provider),
		DefaultDuration: r.DefaultDuration.String(), MaxDuration: r.MaxDuration.String(),
		Approvals: r.Quorum, TicketRequired: r.TicketRequired, TicketPattern: r.TicketPattern,
		MinJustification: r.MinJustification, AutoApprove: r.AutoApprove, BreakGlass: r.BreakGlass,
	}
}
