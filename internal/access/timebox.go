package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// IAM's limits on inline policy size, counted without whitespace. They apply
// to the sum of all inline policies on the entity, not to each one.
const (
	MaxUserInlinePolicySize = 2048
	MaxRoleInlinePolicySize = 10240
)

const (
	timeboxOperator = "DateLessThan"
	timeboxKey      = "aws:CurrentTime"
	timeboxLayout   = "2006-01-02T15:04:05Z"
)

// TimeboxPolicy returns the IAM policy document (compact JSON) with every
// statement conditioned on DateLessThan aws:CurrentTime <end>, so the access
// dies at end even if every revoke path fails. The condition is merged into
// any existing Condition block; an existing DateLessThan aws:CurrentTime is
// replaced by the earlier of the two. Statement may be an object or an array
// in input; the output always has an array.
func TimeboxPolicy(document string, end time.Time) (string, error) {
	if end.IsZero() {
		return "", Errorf(KindInvalid, "timeboxed policy needs an end time")
	}
	dec := json.NewDecoder(strings.NewReader(document))
	dec.UseNumber() // keep numbers in conditions exactly as written
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return "", Wrap(KindInvalid, err, "policy document is not a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", Errorf(KindInvalid, "policy document has data after its end")
	}
	if doc == nil {
		return "", Errorf(KindInvalid, "policy document is not a JSON object")
	}

	var statements []any
	switch s := doc["Statement"].(type) {
	case map[string]any:
		statements = []any{s}
	case []any:
		statements = s
	case nil:
		return "", Errorf(KindInvalid, "policy document has no Statement")
	default:
		return "", Errorf(KindInvalid, "policy Statement must be an object or an array")
	}
	if len(statements) == 0 {
		return "", Errorf(KindInvalid, "policy document has no statements")
	}
	// Truncating never extends access past end.
	end = end.UTC().Truncate(time.Second)
	for i, s := range statements {
		st, ok := s.(map[string]any)
		if !ok {
			return "", Errorf(KindInvalid, "policy statement %d is not an object", i)
		}
		if err := timebox(st, end); err != nil {
			return "", Errorf(KindInvalid, "policy statement %d: %s", i, err)
		}
	}
	doc["Statement"] = statements

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "\u003c" would cost IAM size for nothing
	if err := enc.Encode(doc); err != nil {
		return "", Wrap(KindInvalid, err, "cannot encode policy document")
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// timebox adds the DateLessThan condition to one statement.
func timebox(st map[string]any, end time.Time) error {
	cond := map[string]any{}
	if raw, ok := st["Condition"]; ok && raw != nil {
		if cond, ok = raw.(map[string]any); !ok {
			return errors.New("Condition is not an object")
		}
	}
	lt := map[string]any{}
	if raw, ok := cond[timeboxOperator]; ok && raw != nil {
		if lt, ok = raw.(map[string]any); !ok {
			return errors.New(timeboxOperator + " is not an object")
		}
	}
	for k, v := range lt {
		// IAM condition keys are case-insensitive.
		if !strings.EqualFold(k, timeboxKey) {
			continue
		}
		t, err := latestTime(v)
		if err != nil {
			return err
		}
		if t.Before(end) {
			end = t.UTC().Truncate(time.Second)
		}
		delete(lt, k)
	}
	lt[timeboxKey] = end.Format(timeboxLayout)
	cond[timeboxOperator] = lt
	st["Condition"] = cond
	return nil
}

// latestTime reads a condition value. Several values are ORed by IAM, so the
// latest of them is the one that bounds access.
func latestTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case string:
		return parseIAMTime(x)
	case json.Number:
		return parseIAMTime(x.String())
	case []any:
		var latest time.Time
		for _, e := range x {
			t, err := latestTime(e)
			if err != nil {
				return time.Time{}, err
			}
			if t.After(latest) {
				latest = t
			}
		}
		if !latest.IsZero() {
			return latest, nil
		}
	}
	return time.Time{}, errors.New("cannot read the existing " + timeboxOperator + " " + timeboxKey + " value")
}

// parseIAMTime reads the date forms IAM accepts: ISO 8601 and epoch seconds.
func parseIAMTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(secs, 0).UTC(), nil
	}
	return time.Time{}, errors.New("cannot read time " + strconv.Quote(s) + " in " + timeboxOperator + " " + timeboxKey)
}

// PolicySize counts characters as IAM does: whitespace is not counted.
func PolicySize(document string) int {
	n := 0
	for _, r := range document {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}
