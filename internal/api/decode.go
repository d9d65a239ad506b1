package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 16 << 10

// decodeJSON reads one JSON object strictly: size-capped, unknown fields and
// trailing data refused, type errors naming the field.
func decodeJSON(body io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes+1))
	if err != nil {
		return access.Errorf(access.KindInvalid, "could not read the request body")
	}
	if len(data) > MaxBodyBytes {
		return access.Errorf(access.KindInvalid, "request body is larger than %d bytes", MaxBodyBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return access.Errorf(access.KindInvalid, "request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return access.Errorf(access.KindInvalid, "request body has data after the JSON object")
	}
	return exactKeys(data, v)
}

// exactKeys refuses what encoding/json lets through: a key that matches a
// field only ignoring case ("ROLEID"), and a key given twice (the last would
// silently win). Either would let a body mean something other than it says.
func exactKeys(data []byte, v any) error {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	known := map[string]bool{}
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			known[name] = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return jsonError(err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return jsonError(err)
		}
		key, _ := tok.(string)
		switch {
		case !known[key]:
			return access.FieldErrorf(key, "is not a known field (names are case-sensitive)")
		case seen[key]:
			return access.FieldErrorf(key, "is given more than once")
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return jsonError(err)
		}
	}
	return nil
}

func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return access.Errorf(access.KindInvalid, "request body must be a JSON object")
		}
		return access.FieldErrorf(field, "must be a %s", jsonType(typeErr.Type.Kind().String()))
	case errors.As(err, &syntaxErr):
		return access.Errorf(access.KindInvalid, "request body is not valid JSON (at byte %d)", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return access.FieldErrorf(field, "is not a known field")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return access.Errorf(access.KindInvalid, "request body is truncated JSON")
	}
	var fe *access.Error
	if errors.As(err, &fe) {
		return fe
	}
	return access.Errorf(access.KindInvalid, "request body is not valid: %v", err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "int", "int64", "float64":
		return "number"
	case "bool":
		return "boolean"
	}
	return kind
}

// CreateBody is the JSON of POST /requests.
type CreateBody struct {
	RoleID        string `json:"roleId"`
	Duration      string `json:"duration,omitempty"` // Go duration, e.g. "90m"; empty = role default
	StartAt       string `json:"startAt,omitempty"`  // RFC 3339; empty = now
	Justification string `json:"justification"`
	Ticket        string `json:"ticket,omitempty"`
}

// DecodeCreate turns a POST /requests body into the use case's input.
func DecodeCreate(body io.Reader) (app.SubmitInput, error) {
	var b CreateBody
	if err := decodeJSON(body, &b); err != nil {
		return app.SubmitInput{}, err
	}
	return b.input()
}

func (b CreateBody) input() (app.SubmitInput, error) {
	in := app.SubmitInput{RoleID: strings.TrimSpace(b.RoleID), Justification: strings.TrimSpace(b.Justification), Ticket: strings.TrimSpace(b.Ticket)}
	if in.RoleID == "" {
		return in, access.FieldErrorf("roleId", "is required")
	}
	if len(in.RoleID) > 64 {
		return in, access.FieldErrorf("roleId", "must be at most 64 characters")
	}
	if utf8.RuneCountInString(in.Justification) > 2000 {
		return in, access.FieldErrorf("justification", "must be at most 2000 characters")
	}
	if utf8.RuneCountInString(in.Ticket) > 128 {
		return in, access.FieldErrorf("ticket", "must be at most 128 characters")
	}
	if b.Duration != "" {
		d, err := time.ParseDuration(b.Duration)
		switch {
		case err != nil || d <= 0:
			return in, access.FieldErrorf("duration", "must be a positive duration such as 30m or 2h")
		case d < access.MinDuration:
			return in, access.FieldErrorf("duration", "must be at least %s: access ends on a one-minute schedule", access.MinDuration)
		case d%time.Second != 0:
			return in, access.FieldErrorf("duration", "must be whole seconds")
		}
		in.Duration = d
	}
	if b.StartAt != "" {
		t, err := time.Parse(time.RFC3339, b.StartAt)
		if err != nil {
			return in, access.FieldErrorf("startAt", "must be an RFC 3339 time such as 2026-12-24T22:00:00Z")
		}
		in.StartAt = t
	}
	return in, nil
}

// DecisionBody is the JSON of approve, deny, cancel and revoke.
type DecisionBody struct {
	Comment string `json:"comment,omitempty"`
}

// decodeOptional accepts an empty body as the zero value.
func decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 && r.Body != nil {
		peek := make([]byte, 1)
		n, _ := r.Body.Read(peek)
		if n == 0 {
			return nil
		}
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(peek[:n]), r.Body))
	}
	return decodeJSON(r.Body, v)
}

func commentOf(r *http.Request) (string, error) {
	var b DecisionBody
	if err := decodeOptional(r, &b); err != nil {
		return "", err
	}
	comment := strings.TrimSpace(b.Comment)
	if utf8.RuneCountInString(comment) > 1000 {
		return "", access.FieldErrorf("comment", "must be at most 1000 characters")
	}
	return comment, nil
}
