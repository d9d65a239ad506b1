// Package access is the domain: requests, their lifecycle, grants, audit
// records and the error kinds every layer speaks. It imports only the
// standard library.
package access

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that each edge (HTTP, scheduler, logs) can
// react to it without knowing where it came from.
type Kind string

const (
	KindInvalid      Kind = "invalid"
	KindUnauthorized Kind = "unauthorized"
	KindForbidden    Kind = "forbidden"
	KindNotFound     Kind = "not_found"
	KindConflict     Kind = "conflict"
	KindTooMany      Kind = "too_many_requests"
	KindInternal     Kind = "internal"
)

// Error is the one error type of the domain. Message is safe to show to the
// caller for every kind but KindInternal; Field names the input at fault.
type Error struct {
	Kind    Kind
	Message string
	Field   string
	Err     error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind, msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Kind, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error of the given kind.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf builds a KindInvalid error that names the input field at fault.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Wrap marks err as being of kind with a caller-safe message.
func Wrap(kind Kind, err error, message string) *Error {
	return &Error{Kind: kind, Message: message, Err: err}
}

// KindOf returns the kind of err; anything that is not an *Error is internal.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsKind reports whether err is of the given kind.
func IsKind(err error, kind Kind) bool { return err != nil && KindOf(err) == kind }

// PublicMessage is what may be shown to a caller: the message of a domain
// error, or a generic text for anything internal.
func PublicMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != KindInternal {
		if e.Field != "" {
			return e.Field + ": " + e.Message
		}
		return e.Message
	}
	return "internal error"
}
