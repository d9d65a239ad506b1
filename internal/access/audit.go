package access

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuditRecord is one entry of a request's append-only trail. Seq equals the
// request version the record produced, and each record carries the hash of
// the one before it, so a changed, missing or reordered record is detectable.
type AuditRecord struct {
	RequestID string    `json:"requestId"`
	Seq       int       `json:"seq"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Action    EventType `json:"action"`
	From      Status    `json:"from,omitempty"`
	To        Status    `json:"to"`
	Detail    string    `json:"detail,omitempty"`
	PrevHash  string    `json:"prevHash,omitempty"`
	Hash      string    `json:"hash"`
}

// ComputeHash is the SHA-256 over every field but Hash, in a fixed,
// unambiguous encoding (each field quoted).
func (a AuditRecord) ComputeHash() string {
	var b strings.Builder
	for _, f := range []string{
		a.RequestID, strconv.Itoa(a.Seq), a.At.UTC().Format(time.RFC3339Nano), a.Actor,
		string(a.Action), string(a.From), string(a.To), a.Detail, a.PrevHash,
	} {
		b.WriteString(strconv.Quote(f))
		b.WriteByte('\n')
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

func newRecord(prev, next Request, e Event, now time.Time, detail string) AuditRecord {
	rec := AuditRecord{
		RequestID: next.ID,
		Seq:       next.Version,
		At:        now.UTC(),
		Actor:     e.Actor,
		Action:    e.Type,
		From:      prev.Status,
		To:        next.Status,
		Detail:    detail,
		PrevHash:  prev.AuditHead,
	}
	rec.Hash = rec.ComputeHash()
	return rec
}

// Apply runs Transition and builds the audit record of the change, chained
// to the request's previous record. The returned request carries the new
// chain head; store both or neither.
func Apply(r Request, e Event, now time.Time) (Request, AuditRecord, error) {
	next, err := Transition(r, e, now)
	if err != nil {
		return r, AuditRecord{}, err
	}
	detail := e.Comment
	if e.Error != "" {
		detail = strings.TrimSpace(detail + " error: " + e.Error)
	}
	rec := newRecord(r, next, e, now, detail)
	next.AuditHead = rec.Hash
	return next, rec, nil
}

// SubmitWithAudit runs Submit and builds the first audit record.
func SubmitWithAudit(r Request, now time.Time) (Request, AuditRecord, error) {
	next, err := Submit(r, now)
	if err != nil {
		return r, AuditRecord{}, err
	}
	detail := fmt.Sprintf("role %s for %s from %s to %s (%s)", next.RoleID, next.Principal,
		next.StartAt.Format(time.RFC3339), next.EndAt.Format(time.RFC3339), next.Mode)
	rec := newRecord(Request{}, next, Event{Type: EventSubmit, Actor: next.Requester}, now, detail)
	next.AuditHead = rec.Hash
	return next, rec, nil
}

// CheckWrite is what a store checks before it writes next and its audit
// record rec over prev (the zero Request for a create): the record is the
// next link of prev's chain, its hash is right, and next points at it. A
// caller bug then fails the write instead of committing a broken chain that
// only a later Verify would notice.
func CheckWrite(prev, next Request, rec AuditRecord) error {
	switch {
	case next.ID == "" || (prev.ID != "" && prev.ID != next.ID) || rec.RequestID != next.ID:
		return Errorf(KindInternal, "write mixes requests %q, %q and an audit record of %q", prev.ID, next.ID, rec.RequestID)
	case prev.ID != "" && next.Version != prev.Version+1:
		return Errorf(KindInternal, "transition of %s from version %d to %d; want %d", prev.ID, prev.Version, next.Version, prev.Version+1)
	case rec.Seq != next.Version:
		return Errorf(KindInternal, "audit record %d of %s does not match version %d", rec.Seq, next.ID, next.Version)
	case rec.PrevHash != prev.AuditHead:
		return Errorf(KindInternal, "audit record %d of %s does not link to the request's head", rec.Seq, next.ID)
	case rec.Hash != rec.ComputeHash():
		return Errorf(KindInternal, "audit record %d of %s carries a wrong hash", rec.Seq, next.ID)
	case next.AuditHead != rec.Hash:
		return Errorf(KindInternal, "request %s does not point at its new audit record", next.ID)
	}
	return nil
}

// VerifyTrail checks the trail of request r as stored: the chain verifies,
// belongs to r, ends at the head r points at, and has one record per
// version. The head is required here, so removing the newest records and
// the head together is caught too.
func VerifyTrail(r Request, records []AuditRecord) error {
	switch {
	case r.AuditHead == "":
		return Errorf(KindConflict, "request %s points at no audit record: its head was removed", r.ID)
	case len(records) > 0 && records[0].RequestID != r.ID:
		return Errorf(KindConflict, "audit trail of %s belongs to request %s", r.ID, records[0].RequestID)
	}
	if err := VerifyChain(records, r.AuditHead); err != nil {
		return err
	}
	if last := records[len(records)-1].Seq; last != r.Version {
		return Errorf(KindConflict, "audit trail ends at record %d, but request %s is at version %d", last, r.ID, r.Version)
	}
	return nil
}

// VerifyChain checks a request's trail, given in Seq order: numbering starts
// at 1 without gaps, every hash recomputes, every record links to the one
// before, and (when head is not empty) the last record is the head the
// request item points at, so a removed tail is caught too.
func VerifyChain(records []AuditRecord, head string) error {
	if len(records) == 0 {
		return Errorf(KindConflict, "audit trail is empty")
	}
	prev := ""
	for i, rec := range records {
		switch {
		case rec.Seq != i+1:
			return Errorf(KindConflict, "audit record %d has sequence %d: a record is missing or out of order", i+1, rec.Seq)
		case rec.RequestID != records[0].RequestID:
			return Errorf(KindConflict, "audit record %d belongs to request %s", rec.Seq, rec.RequestID)
		case rec.PrevHash != prev:
			return Errorf(KindConflict, "audit record %d does not link to record %d", rec.Seq, rec.Seq-1)
		case rec.ComputeHash() != rec.Hash:
			return Errorf(KindConflict, "audit record %d was modified", rec.Seq)
		}
		prev = rec.Hash
	}
	if head != "" && prev != head {
		return Errorf(KindConflict, "audit trail ends at record %d, but the request points at a later record", len(records))
	}
	return nil
}
