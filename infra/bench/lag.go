package bench

import "time"

// LagResult is the revoke-lag measurement (part 5), shared by the local
// stack's run (bench/cmd/jitbench-lag, which prints it as JSON) and the
// in-process fallback of jitbench.
type LagResult struct {
	// Method says how the schedules were fired.
	Method string `json:"method"`
	// Grants is how many grants ended in the same minute; Revoked how many
	// of them were verified gone from IAM and EXPIRED afterwards.
	Grants  int `json:"grants"`
	Revoked int `json:"revoked"`
	// Lags are, per grant, the time from the schedule's firing to the
	// request's EXPIRED transition, which follows the IAM read-back that no
	// longer sees the access.
	Lags []time.Duration `json:"lags"`
	// GrantLags are the same for the activations, when measured.
	GrantLags []time.Duration `json:"grantLags,omitempty"`
	// Wall is from the first firing until every revoke was done.
	Wall  time.Duration `json:"wall"`
	Notes []string      `json:"notes,omitempty"`
}
