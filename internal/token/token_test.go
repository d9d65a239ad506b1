package token_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/token"
)

var _ app.Tokens = (*token.Signer)(nil)

func TestMain(m *testing.M) { awstest.Main(m) }

// The fuzz corpus under testdata/fuzz/FuzzVerify is signed with testKey and
// valid at fuzzNow; keep them in step.
var (
	testKey  = []byte("test-key-0123456789abcdef0123456789")
	otherKey = []byte("other-key-0123456789abcdef012345678")
	fuzzNow  = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	fuzzExp  = fuzzNow.Add(time.Hour)
)

const validJTI = "00112233445566778899aabbccddeeff"

// signRaw builds a token from payload JSON by the documented wire format,
// independently of the package, so tests can sign payloads Issue never would.
func signRaw(key []byte, payloadJSON string) string {
	p := base64.RawURLEncoding.EncodeToString([]byte(payloadJSON))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(p))
	return p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func validPayload(fields string) string {
	return `{"v":1,"jti":"` + validJTI + `","rid":"req-1","sub":"alice@example.com","exp":1893502800` + fields + `}`
}

func TestValidPayloadMatchesFuzzExp(t *testing.T) {
	require.Equal(t, int64(1893502800), fuzzExp.Unix())
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := token.New(token.StaticKey(testKey))
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	exp := now.Add(48*time.Hour + 1500*time.Millisecond)

	tok, err := s.Issue(ctx, access.ApprovalClaims{RequestID: "req-42", Approver: "Alice@Example.COM", ExpiresAt: exp})
	require.NoError(t, err)
	assert.Regexp(t, `^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$`, tok)

	got, err := s.Verify(ctx, tok, now)
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{32}$`), got.TokenID)
	assert.Equal(t, "req-42", got.RequestID)
	assert.Equal(t, "alice@example.com", got.Approver, "approver is lowercased")
	assert.Equal(t, exp.Truncate(time.Second), got.ExpiresAt)

	// The claims name the approver the link was made for; a different
	// signed-in approver is the caller's to refuse.
	assert.NotEqual(t, "bob@example.com", got.Approver)

	again, err := s.Issue(ctx, access.ApprovalClaims{RequestID: "req-42", Approver: "alice@example.com", ExpiresAt: exp})
	require.NoError(t, err)
	other, err := s.Verify(ctx, again, now)
	require.NoError(t, err)
	assert.NotEqual(t, got.TokenID, other.TokenID, "every link gets its own id")
}

func TestIssueKeepsTokenID(t *testing.T) {
	ctx := context.Background()
	s := token.New(token.StaticKey(testKey))
	tok, err := s.Issue(ctx, access.ApprovalClaims{TokenID: validJTI, RequestID: "req-1", Approver: "alice@example.com", ExpiresAt: fuzzExp})
	require.NoError(t, err)
	assert.Equal(t, signRaw(testKey, validPayload("")), tok, "wire format as documented")
	got, err := s.Verify(ctx, tok, fuzzNow)
	require.NoError(t, err)
	assert.Equal(t, validJTI, got.TokenID)
}

func TestIssueRejects(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	tests := []struct {
		name     string
		keys     token.KeySource
		give     access.ApprovalClaims
		wantKind access.Kind
	}{
		{"no request", token.StaticKey(testKey), access.ApprovalClaims{Approver: "a@example.com", ExpiresAt: exp}, access.KindInvalid},
		{"no approver", token.StaticKey(testKey), access.ApprovalClaims{RequestID: "r", ExpiresAt: exp}, access.KindInvalid},
		{"no expiry", token.StaticKey(testKey), access.ApprovalClaims{RequestID: "r", Approver: "a@example.com"}, access.KindInvalid},
		{"too long", token.StaticKey(testKey), access.ApprovalClaims{RequestID: "r", Approver: strings.Repeat("a", token.MaxLen), ExpiresAt: exp}, access.KindInvalid},
		{"short key", token.StaticKey("short"), access.ApprovalClaims{RequestID: "r", Approver: "a@example.com", ExpiresAt: exp}, access.KindInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := token.New(tt.keys).Issue(context.Background(), tt.give)
			require.Error(t, err)
			assert.Empty(t, tok)
			assert.Equal(t, tt.wantKind, access.KindOf(err))
		})
	}
}

func TestVerify(t *testing.T) {
	valid := signRaw(testKey, validPayload(""))
	payloadPart, sigPart, _ := strings.Cut(valid, ".")
	// Same signature over a payload with one claim changed.
	tamper := func(from, to string) string {
		p := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(validPayload(""), from, to, 1)))
		return p + "." + sigPart
	}
	_, otherSig, _ := strings.Cut(signRaw(testKey, strings.Replace(validPayload(""), "req-1", "req-2", 1)), ".")
	flipLast := func(s string) string {
		b := []byte(s)
		if b[len(b)-2] == 'A' {
			b[len(b)-2] = 'B'
		} else {
			b[len(b)-2] = 'A'
		}
		return string(b)
	}

	var (
		malformed   = &access.Error{Kind: access.KindInvalid, Message: "this approval link is malformed"}
		unsupported = &access.Error{Kind: access.KindInvalid, Message: "this approval link has an unsupported version"}
		notValid    = &access.Error{Kind: access.KindUnauthorized, Message: "this approval link is not valid"}
		expired     = &access.Error{Kind: access.KindUnauthorized, Message: "this approval link has expired"}
	)
	tests := []struct {
		name    string
		give    string
		now     time.Time
		want    access.ApprovalClaims
		wantErr *access.Error
	}{
		{name: "valid", give: valid, want: access.ApprovalClaims{TokenID: validJTI, RequestID: "req-1", Approver: "alice@example.com", ExpiresAt: fuzzExp}},
		{name: "valid just before expiry", give: valid, now: fuzzExp.Add(-time.Nanosecond), want: access.ApprovalClaims{TokenID: validJTI, RequestID: "req-1", Approver: "alice@example.com", ExpiresAt: fuzzExp}},
		{name: "expired at exp", give: valid, now: fuzzExp, wantErr: expired},
		{name: "expired later", give: valid, now: fuzzExp.Add(24 * time.Hour), wantErr: expired},
		{name: "empty", give: "", wantErr: malformed},
		{name: "no dot", give: payloadPart, wantErr: malformed},
		{name: "dot only", give: ".", wantErr: malformed},
		{name: "empty payload", give: "." + sigPart, wantErr: malformed},
		{name: "three parts", give: valid + "." + sigPart, wantErr: malformed},
		{name: "truncated signature", give: valid[:len(valid)-5], wantErr: malformed},
		{name: "signature cut off", give: payloadPart + ".", wantErr: malformed},
		{name: "truncated payload", give: payloadPart[:len(payloadPart)-3] + "." + sigPart, wantErr: malformed},
		{name: "padded", give: valid + "=", wantErr: malformed},
		{name: "std base64 alphabet", give: "+/" + valid, wantErr: malformed},
		{name: "not base64", give: "not a token!.at all", wantErr: malformed},
		{name: "huge", give: strings.Repeat("A", token.MaxLen+1), wantErr: malformed},
		{name: "huge with valid prefix", give: valid + strings.Repeat("A", token.MaxLen), wantErr: malformed},
		{name: "forged signature", give: signRaw(otherKey, validPayload("")), wantErr: notValid},
		{name: "flipped signature byte", give: flipLast(valid), wantErr: notValid},
		{name: "tampered request", give: tamper(`"rid":"req-1"`, `"rid":"req-2"`), wantErr: notValid},
		{name: "tampered approver", give: tamper(`"sub":"alice@`, `"sub":"mallo@`), wantErr: notValid},
		{name: "tampered expiry", give: tamper(`"exp":1893502800`, `"exp":1993502800`), wantErr: notValid},
		{name: "signature of another token", give: payloadPart + "." + otherSig, wantErr: notValid},
		{name: "unknown field", give: signRaw(testKey, validPayload(`,"role":"admin"`)), wantErr: malformed},
		{name: "trailing data", give: signRaw(testKey, validPayload("")+"{}"), wantErr: malformed},
		{name: "not json", give: signRaw(testKey, "hello"), wantErr: malformed},
		{name: "json array", give: signRaw(testKey, "[1]"), wantErr: malformed},
		{name: "wrong type", give: signRaw(testKey, `{"v":"1","jti":"j","rid":"r","sub":"s","exp":1893502800}`), wantErr: malformed},
		{name: "version 2", give: signRaw(testKey, `{"v":2,"jti":"j","rid":"r","sub":"s","exp":1893502800}`), wantErr: unsupported},
		{name: "no version", give: signRaw(testKey, `{"jti":"j","rid":"r","sub":"s","exp":1893502800}`), wantErr: unsupported},
		{name: "missing jti", give: signRaw(testKey, `{"v":1,"rid":"r","sub":"s","exp":1893502800}`), wantErr: malformed},
		{name: "missing rid", give: signRaw(testKey, `{"v":1,"jti":"j","sub":"s","exp":1893502800}`), wantErr: malformed},
		{name: "missing sub", give: signRaw(testKey, `{"v":1,"jti":"j","rid":"r","exp":1893502800}`), wantErr: malformed},
		{name: "missing exp", give: signRaw(testKey, `{"v":1,"jti":"j","rid":"r","sub":"s"}`), wantErr: malformed},
		{name: "null jti", give: signRaw(testKey, `{"v":1,"jti":null,"rid":"r","sub":"s","exp":1893502800}`), wantErr: malformed},
	}
	s := token.New(token.StaticKey(testKey))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = fuzzNow
			}
			got, err := s.Verify(context.Background(), tt.give, now)
			if tt.wantErr != nil {
				var e *access.Error
				require.True(t, errors.As(err, &e), "want *access.Error, got %v", err)
				assert.Equal(t, tt.wantErr.Kind, e.Kind)
				assert.Equal(t, tt.wantErr.Message, e.Message)
				assert.Equal(t, tt.wantErr.Message, access.PublicMessage(err))
				assert.Zero(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestVerifyWrongKey(t *testing.T) {
	ctx := context.Background()
	tok, err := token.New(token.StaticKey(otherKey)).Issue(ctx, access.ApprovalClaims{RequestID: "r", Approver: "a@example.com", ExpiresAt: fuzzExp})
	require.NoError(t, err)
	_, err = token.New(token.StaticKey(testKey)).Verify(ctx, tok, fuzzNow)
	assert.True(t, access.IsKind(err, access.KindUnauthorized), "got %v", err)
}

// countingKeys counts key fetches, to show cheap rejections never need the key.
type countingKeys struct {
	key   token.StaticKey
	calls int
}

func (c *countingKeys) Key(ctx context.Context) ([]byte, error) {
	c.calls++
	return c.key.Key(ctx)
}

func TestVerifyRejectsGarbageBeforeFetchingKey(t *testing.T) {
	keys := &countingKeys{key: testKey}
	s := token.New(keys)
	for _, give := range []string{"", strings.Repeat("x", 1<<20), "a.b.c", "!!!.???", "YQ.YQ"} {
		_, err := s.Verify(context.Background(), give, fuzzNow)
		require.True(t, access.IsKind(err, access.KindInvalid), "%q: %v", give, err)
	}
	assert.Zero(t, keys.calls)
}

func TestVerifyKeyFailure(t *testing.T) {
	_, err := token.New(token.StaticKey("short")).Verify(context.Background(), signRaw(testKey, validPayload("")), fuzzNow)
	assert.Equal(t, access.KindInternal, access.KindOf(err))
}

func FuzzVerify(f *testing.F) {
	ctx := context.Background()
	s := token.New(token.StaticKey(testKey))
	valid, err := s.Issue(ctx, access.ApprovalClaims{TokenID: validJTI, RequestID: "req-1", Approver: "alice@example.com", ExpiresAt: fuzzExp})
	require.NoError(f, err)
	for _, seed := range []string{
		valid,
		valid + "A",
		signRaw(testKey, validPayload(`,"x":1`)),
		signRaw(testKey, `{"v":2}`),
		signRaw(otherKey, validPayload("")),
		"", ".", "..", "a.b", "e30.e30",
		strings.Repeat("A", token.MaxLen+1),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, give string) {
		c, err := s.Verify(ctx, give, fuzzNow)
		if err != nil {
			kind := access.KindOf(err)
			if kind != access.KindInvalid && kind != access.KindUnauthorized {
				t.Fatalf("Verify(%q) = %v, want an invalid or unauthorized error", give, err)
			}
			return
		}
		// Only what we signed verifies, and it has exactly one spelling.
		again, err := s.Issue(ctx, c)
		require.NoError(t, err)
		require.Equal(t, give, again)
	})
}

// The checked-in corpus must keep a token that verifies, or the fuzzer loses
// its way into the code past the signature check.
func TestFuzzCorpusHasValidToken(t *testing.T) {
	data, err := os.ReadFile("testdata/fuzz/FuzzVerify/valid")
	require.NoError(t, err)
	tok, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(string(data)), "go test fuzz v1\nstring("), ")"))
	require.NoError(t, err)
	c, err := token.New(token.StaticKey(testKey)).Verify(context.Background(), tok, fuzzNow)
	require.NoError(t, err)
	assert.Equal(t, validJTI, c.TokenID)
}
