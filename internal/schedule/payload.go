package schedule

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/jitaccess/jit/internal/access"
)

// Payload is the input a schedule passes to its target function.
type Payload struct {
	Action    string `json:"action"`
	RequestID string `json:"requestId"`
}

// validRequestID keeps ids within what fits a schedule name after "revoke-".
func validRequestID(s string) bool { return isNameOf(s, 57) }

// maxPayload bounds what ParsePayload reads; a real payload is under 100 bytes.
const maxPayload = 1024

// Marshal encodes p as the schedule input.
func (p Payload) Marshal() ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(p)
}

// ParsePayload decodes a schedule input strictly: one JSON object, no unknown
// fields, a known action and a well-formed request id. Anything else is
// KindInvalid, since the event may not come from our own schedules.
func ParsePayload(b []byte) (Payload, error) {
	if len(b) > maxPayload {
		return Payload{}, access.Errorf(access.KindInvalid, "schedule payload is %d bytes, more than %d", len(b), maxPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Payload
	if err := dec.Decode(&p); err != nil {
		return Payload{}, access.Wrap(access.KindInvalid, err, "schedule payload is not a valid JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Payload{}, access.Errorf(access.KindInvalid, "schedule payload has data after the JSON object")
	}
	if err := p.validate(); err != nil {
		return Payload{}, err
	}
	return p, nil
}

func (p Payload) validate() error {
	if p.Action != actionGrant && p.Action != actionRevoke {
		return access.FieldErrorf("action", "must be grant or revoke, not %q", p.Action)
	}
	if !validRequestID(p.RequestID) {
		return access.FieldErrorf("requestId", "must be 1-57 characters of letters, digits, '.', '_' and '-'")
	}
	return nil
}
