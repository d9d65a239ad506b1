// Package token issues and verifies the signed personal approval links that
// are emailed to approvers.
//
// A token is base64url(payload) + "." + base64url(HMAC-SHA256(key, payloadPart)),
// unpadded, where payload is {"v":1,"jti":..,"rid":..,"sub":..,"exp":..}.
// Verify proves a link authentic and unexpired; making it single-use by
// consuming its jti is the store's job.
package token

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/jitaccess/jit/internal/access"
)

// MaxLen caps the token length; longer input is rejected before any decoding
// so garbage costs nothing to refuse.
const MaxLen = 2048

const version = 1

// Strict rejects non-canonical encodings, so one token has exactly one spelling.
var b64 = base64.RawURLEncoding.Strict()

var (
	errMalformed   = access.Errorf(access.KindInvalid, "this approval link is malformed")
	errUnsupported = access.Errorf(access.KindInvalid, "this approval link has an unsupported version")
	errForged      = access.Errorf(access.KindUnauthorized, "this approval link is not valid")
	errExpired     = access.Errorf(access.KindUnauthorized, "this approval link has expired")
)

type payload struct {
	V   int    `json:"v"`
	JTI string `json:"jti"`
	RID string `json:"rid"`
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

// Signer issues and verifies approval tokens.
type Signer struct {
	keys KeySource
}

// New returns a Signer using the key from keys.
func New(keys KeySource) *Signer {
	return &Signer{keys: keys}
}

// Issue signs c. It assigns a random TokenID when c has none and lowercases
// the approver, as identities compare case-insensitively. ExpiresAt is kept
// to the second.
func (s *Signer) Issue(ctx context.Context, c access.ApprovalClaims) (string, error) {
	if c.RequestID == "" || c.Approver == "" || c.ExpiresAt.Unix() <= 0 {
		return "", access.Errorf(access.KindInvalid, "an approval link needs a request id, an approver and an expiry")
	}
	if c.TokenID == "" {
		c.TokenID = newTokenID()
	}
	key, err := s.keys.Key(ctx)
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(payload{
		V:   version,
		JTI: c.TokenID,
		RID: c.RequestID,
		Sub: strings.ToLower(c.Approver),
		Exp: c.ExpiresAt.Unix(),
	})
	if err != nil {
		return "", access.Wrap(access.KindInternal, err, "encode approval link")
	}
	p := b64.EncodeToString(body)
	tok := p + "." + b64.EncodeToString(sign(key, p))
	if len(tok) > MaxLen { // Verify would refuse it
		return "", access.Errorf(access.KindInvalid, "an approval link for these claims would be too long")
	}
	return tok, nil
}

// Verify checks the token's form, signature and expiry at now and returns its
// claims. Errors are KindInvalid for malformed input, KindUnauthorized for a
// bad signature or an expired link, and whatever the key source returns.
func (s *Signer) Verify(ctx context.Context, tok string, now time.Time) (access.ApprovalClaims, error) {
	if tok == "" || len(tok) > MaxLen {
		return access.ApprovalClaims{}, errMalformed
	}
	p, sigPart, ok := strings.Cut(tok, ".")
	if !ok || p == "" || strings.Contains(sigPart, ".") {
		return access.ApprovalClaims{}, errMalformed
	}
	body, err := b64.DecodeString(p)
	if err != nil {
		return access.ApprovalClaims{}, errMalformed
	}
	sig, err := b64.DecodeString(sigPart)
	if err != nil || len(sig) != sha256.Size {
		return access.ApprovalClaims{}, errMalformed
	}
	key, err := s.keys.Key(ctx)
	if err != nil {
		return access.ApprovalClaims{}, err
	}
	if !hmac.Equal(sig, sign(key, p)) {
		return access.ApprovalClaims{}, errForged
	}

	// Only signed bytes are parsed from here on.
	var pl payload
	if err := decodeStrict(body, &pl); err != nil {
		return access.ApprovalClaims{}, errMalformed
	}
	if pl.V != version {
		return access.ApprovalClaims{}, errUnsupported
	}
	if pl.JTI == "" || pl.RID == "" || pl.Sub == "" || pl.Exp <= 0 {
		return access.ApprovalClaims{}, errMalformed
	}
	exp := time.Unix(pl.Exp, 0).UTC()
	if !now.Before(exp) {
		return access.ApprovalClaims{}, errExpired
	}
	return access.ApprovalClaims{TokenID: pl.JTI, RequestID: pl.RID, Approver: pl.Sub, ExpiresAt: exp}, nil
}

func sign(key []byte, payloadPart string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(payloadPart))
	return m.Sum(nil)
}

// decodeStrict decodes exactly one JSON object with no unknown fields and
// nothing after it.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after JSON object")
	}
	return nil
}

// newTokenID returns 128 random bits in hex. crypto/rand.Read never fails;
// it crashes the program rather than return weak bytes.
func newTokenID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
