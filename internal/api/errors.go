// Package api turns API Gateway HTTP API (payload 2.0) requests into use
// cases and back. It is a plain net/http handler: the Lambdas run it through
// aws-lambda-go-api-proxy, the local gateway and the tests through HTTP.
package api

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/jitaccess/jit/internal/access"
)

// statusOf is the one table from error kind to HTTP status.
var statusOf = map[access.Kind]int{
	access.KindInvalid:      http.StatusBadRequest,
	access.KindUnauthorized: http.StatusUnauthorized,
	access.KindForbidden:    http.StatusForbidden,
	access.KindNotFound:     http.StatusNotFound,
	access.KindConflict:     http.StatusConflict,
	access.KindTooMany:      http.StatusTooManyRequests,
	access.KindInternal:     http.StatusInternalServerError,
}

// Status maps an error to its HTTP status.
func Status(err error) int {
	if s, ok := statusOf[access.KindOf(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers with {"error":{"code","message"}}. Internal errors get
// a generic message; their detail goes only to the log, with the request id.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := Status(err)
	var body errorBody
	body.Error.Code = string(access.KindOf(err))
	body.Error.Message = access.PublicMessage(err)
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
	} else {
		log.InfoContext(r.Context(), "request refused", "method", r.Method, "path", r.URL.Path, "status", status, "error", err.Error())
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
