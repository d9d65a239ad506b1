package token

import (
	"context"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/jitaccess/jit/internal/access"
)

// MinKeyLen is the shortest HMAC key accepted: HMAC-SHA256 gains nothing
// from keys longer than its 32-byte output, and loses strength below it.
const MinKeyLen = 32

// KeySource supplies the HMAC key that signs approval links.
type KeySource interface {
	Key(ctx context.Context) ([]byte, error)
}

// StaticKey is a fixed key, for tests and local runs.
type StaticKey []byte

// Key returns k, or an error when it is too short to be safe.
func (k StaticKey) Key(context.Context) ([]byte, error) {
	if len(k) < MinKeyLen {
		return nil, access.Errorf(access.KindInternal, "approval link key is %d bytes, need at least %d", len(k), MinKeyLen)
	}
	return k, nil
}

// SecretsManagerAPI is the part of the Secrets Manager client the key source uses.
type SecretsManagerAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SecretsManagerKey reads the key from a Secrets Manager secret once and
// keeps it for the life of the container, so signing costs no API call after
// a cold start. Failures are not cached: the next call tries again.
type SecretsManagerKey struct {
	client   SecretsManagerAPI
	secretID string
	key      atomic.Pointer[[]byte]
	// fetching admits one reader at a time, so a cold start under load makes
	// one API call; it is a channel so waiters can give up with their context.
	fetching chan struct{}
}

// NewSecretsManagerKey returns a key source for the secret with the given id or ARN.
func NewSecretsManagerKey(client SecretsManagerAPI, secretID string) *SecretsManagerKey {
	return &SecretsManagerKey{client: client, secretID: secretID, fetching: make(chan struct{}, 1)}
}

// Key returns the cached key, reading the secret on first use.
func (s *SecretsManagerKey) Key(ctx context.Context) ([]byte, error) {
	if k := s.key.Load(); k != nil {
		return *k, nil
	}
	select {
	case s.fetching <- struct{}{}:
		defer func() { <-s.fetching }()
	case <-ctx.Done():
		return nil, access.Wrap(access.KindInternal, ctx.Err(), "approval link key unavailable")
	}
	if k := s.key.Load(); k != nil { // another caller fetched it while we waited
		return *k, nil
	}
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.secretID)})
	if err != nil {
		return nil, access.Wrap(access.KindInternal, err, "read approval link key "+s.secretID)
	}
	key := out.SecretBinary
	if out.SecretString != nil && *out.SecretString != "" {
		key = []byte(*out.SecretString)
	}
	if len(key) < MinKeyLen {
		return nil, access.Errorf(access.KindInternal, "approval link key in %s is %d bytes, need at least %d", s.secretID, len(key), MinKeyLen)
	}
	s.key.Store(&key)
	return key, nil
}
