package token_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/awstest"
	"github.com/jitaccess/jit/internal/token"
)

// countingSM counts GetSecretValue calls on the way to a real client.
type countingSM struct {
	api   token.SecretsManagerAPI
	calls atomic.Int32
}

func (c *countingSM) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	c.calls.Add(1)
	return c.api.GetSecretValue(ctx, in, optFns...)
}

func TestStaticKey(t *testing.T) {
	k, err := token.StaticKey(testKey).Key(context.Background())
	require.NoError(t, err)
	assert.Equal(t, testKey, k)

	_, err = token.StaticKey(make([]byte, token.MinKeyLen-1)).Key(context.Background())
	assert.Equal(t, access.KindInternal, access.KindOf(err))
}

func TestSecretsManagerKey(t *testing.T) {
	srv := awstest.Require(t)
	ctx := awstest.Context(t)
	sm := secretsmanager.NewFromConfig(srv.Config())

	create := func(t *testing.T, in *secretsmanager.CreateSecretInput) {
		t.Helper()
		_, err := sm.CreateSecret(ctx, in)
		require.NoError(t, err)
	}

	t.Run("string secret is read once", func(t *testing.T) {
		const secret = "a-long-random-string-key-0123456789abcdef"
		create(t, &secretsmanager.CreateSecretInput{Name: aws.String("jit/string"), SecretString: aws.String(secret)})
		client := &countingSM{api: sm}
		keys := token.NewSecretsManagerKey(client, "jit/string")

		k1, err := keys.Key(ctx)
		require.NoError(t, err)
		k2, err := keys.Key(ctx)
		require.NoError(t, err)
		assert.Equal(t, []byte(secret), k1)
		assert.Equal(t, k1, k2)
		assert.EqualValues(t, 1, client.calls.Load(), "second call is served from the cache")

		s := token.New(keys)
		tok, err := s.Issue(ctx, access.ApprovalClaims{RequestID: "r", Approver: "a@example.com", ExpiresAt: fuzzExp})
		require.NoError(t, err)
		c, err := s.Verify(ctx, tok, fuzzNow)
		require.NoError(t, err)
		assert.Equal(t, "r", c.RequestID)
		assert.EqualValues(t, 1, client.calls.Load())
	})

	t.Run("binary secret", func(t *testing.T) {
		secret := []byte("\x00\x01binary-key-0123456789abcdef0123456789\xff")
		create(t, &secretsmanager.CreateSecretInput{Name: aws.String("jit/binary"), SecretBinary: secret})
		k, err := token.NewSecretsManagerKey(sm, "jit/binary").Key(ctx)
		require.NoError(t, err)
		assert.Equal(t, secret, k)
	})

	t.Run("short secret is refused and not cached", func(t *testing.T) {
		create(t, &secretsmanager.CreateSecretInput{Name: aws.String("jit/short"), SecretString: aws.String("too-short")})
		client := &countingSM{api: sm}
		keys := token.NewSecretsManagerKey(client, "jit/short")
		for range 2 {
			_, err := keys.Key(ctx)
			assert.Equal(t, access.KindInternal, access.KindOf(err))
		}
		assert.EqualValues(t, 2, client.calls.Load())
	})

	t.Run("missing secret is retried once it exists", func(t *testing.T) {
		client := &countingSM{api: sm}
		keys := token.NewSecretsManagerKey(client, "jit/later")
		_, err := keys.Key(ctx)
		require.Error(t, err)
		assert.Equal(t, access.KindInternal, access.KindOf(err))
		assert.Equal(t, "internal error", access.PublicMessage(err))

		create(t, &secretsmanager.CreateSecretInput{Name: aws.String("jit/later"), SecretString: aws.String(string(testKey))})
		k, err := keys.Key(ctx)
		require.NoError(t, err)
		assert.Equal(t, testKey, k)
		assert.EqualValues(t, 2, client.calls.Load())
	})
}

// slowSM answers after release is closed, failing the first attempt if asked.
type slowSM struct {
	release  chan struct{}
	calls    atomic.Int32
	failOnce atomic.Bool
}

func (s *slowSM) GetSecretValue(ctx context.Context, _ *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s.calls.Add(1)
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if s.failOnce.CompareAndSwap(true, false) {
		return nil, errors.New("throttled")
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(string(testKey))}, nil
}

func TestSecretsManagerKeyConcurrentColdStart(t *testing.T) {
	client := &slowSM{release: make(chan struct{})}
	keys := token.NewSecretsManagerKey(client, "jit/key")

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			k, err := keys.Key(context.Background())
			if err == nil && string(k) != string(testKey) {
				err = errors.New("wrong key")
			}
			errs <- err
		})
	}
	time.Sleep(20 * time.Millisecond) // let them pile up behind the first fetch
	close(client.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, client.calls.Load())
}

func TestSecretsManagerKeyFailureIsNotCached(t *testing.T) {
	client := &slowSM{release: make(chan struct{})}
	client.failOnce.Store(true)
	close(client.release)
	keys := token.NewSecretsManagerKey(client, "jit/key")

	_, err := keys.Key(context.Background())
	assert.Equal(t, access.KindInternal, access.KindOf(err))
	k, err := keys.Key(context.Background())
	require.NoError(t, err)
	assert.Equal(t, testKey, k)
	assert.EqualValues(t, 2, client.calls.Load())
}

func TestSecretsManagerKeyWaiterHonoursContext(t *testing.T) {
	client := &slowSM{release: make(chan struct{})}
	keys := token.NewSecretsManagerKey(client, "jit/key")

	first := make(chan error, 1)
	go func() {
		_, err := keys.Key(context.Background())
		first <- err
	}()
	require.Eventually(t, func() bool { return client.calls.Load() == 1 }, time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := keys.Key(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, access.KindInternal, access.KindOf(err))

	close(client.release)
	require.NoError(t, <-first)
	assert.EqualValues(t, 1, client.calls.Load())
}
