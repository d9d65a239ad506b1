package faults_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/faults"
)

// fakeHTTP stands in for the service: it answers every request with an
// empty JSON object and counts what reached it, per operation.
type fakeHTTP struct {
	mu   sync.Mutex
	seen map[string]int
}

func (f *fakeHTTP) Do(r *http.Request) (*http.Response, error) {
	op := r.Header.Get("X-Amz-Target") // DynamoDB: DynamoDB_20120810.GetItem
	if i := strings.LastIndex(op, "."); i >= 0 {
		op = op[i+1:]
	}
	if op == "" {
		op = r.Method + " " + r.URL.Path // Scheduler is REST-JSON
	}
	f.mu.Lock()
	f.seen[op]++
	f.mu.Unlock()
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK",
		Header:  http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:    io.NopCloser(strings.NewReader(`{}`)),
		Request: r,
	}, nil
}

func (f *fakeHTTP) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[op]
}

type clients struct {
	srv   *fakeHTTP
	db    *dynamodb.Client
	sched *scheduler.Client
}

func newClients(t *testing.T, in *faults.Injector, attempts int) clients {
	t.Helper()
	srv := &fakeHTTP{seen: map[string]int{}}
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
		BaseEndpoint: aws.String("http://fake.invalid"),
		HTTPClient:   srv,
		Retryer:      faults.FastRetryer(attempts, time.Microsecond),
	}
	in.Install(&cfg)
	return clients{srv: srv, db: dynamodb.NewFromConfig(cfg), sched: scheduler.NewFromConfig(cfg)}
}

func getItem(ctx context.Context, c clients, table string) error {
	_, err := c.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "k"},
	}})
	return err
}

func TestTargetedFailIsNotRetriedBySDK(t *testing.T) {
	in := faults.New()
	c := newClients(t, in, 3)
	f := in.Add(&faults.Fault{Op: "GetItem", Kind: faults.Fail, Times: 1})
	ctx := context.Background()

	err := getItem(ctx, c, "t")
	require.Error(t, err)
	assert.True(t, faults.IsInjected(err), "%v", err)
	assert.Equal(t, 1, f.Hits())
	assert.Zero(t, c.srv.count("GetItem"), "a failed attempt never reaches the service")

	require.NoError(t, getItem(ctx, c, "t"), "Times 1: the next call goes through")
	assert.Equal(t, 1, c.srv.count("GetItem"))
	assert.Equal(t, 2, in.Calls("GetItem"))
	st := in.Stats()
	assert.Equal(t, 2, st.Calls["DynamoDB.GetItem"])
	assert.Equal(t, 1, st.Injected[faults.Fail]["DynamoDB.GetItem"])
	assert.Equal(t, 1, st.Failed["DynamoDB.GetItem"])
	assert.Equal(t, 1, st.Exhausted["DynamoDB.GetItem"])
	assert.Equal(t, 1, st.ExhaustedIn(faults.DynamoDB))
	assert.Equal(t, 2, st.OpAttempts["DynamoDB.GetItem"])
	assert.Equal(t, 2, st.AttemptsTo(faults.DynamoDB))
	assert.Zero(t, st.Retries, "the SDK does not retry a non-retryable server error")
}

func TestRetryableKindsAreRetriedBySDK(t *testing.T) {
	for _, k := range []faults.Kind{faults.Throttle, faults.ServerError, faults.Timeout, faults.LostResponse} {
		t.Run(string(k), func(t *testing.T) {
			in := faults.New()
			c := newClients(t, in, 3)
			f := in.Add(&faults.Fault{Op: "GetItem", Kind: k, Times: 2})
			require.NoError(t, getItem(context.Background(), c, "t"), "two faults, three attempts")
			assert.Equal(t, 2, f.Hits())
			st := in.Stats()
			assert.Equal(t, 3, st.Attempts)
			assert.Equal(t, 2, st.Retries)
			assert.Zero(t, st.Failed["DynamoDB.GetItem"])
			want := 1
			if k == faults.LostResponse {
				want = 3 // the lost attempts reached the service too
			}
			assert.Equal(t, want, c.srv.count("GetItem"))
		})
	}
}

func TestRetryableFaultExhaustsSDKAttempts(t *testing.T) {
	in := faults.New()
	c := newClients(t, in, 3)
	in.Add(&faults.Fault{Op: "GetItem", Kind: faults.ServerError, Times: -1})
	err := getItem(context.Background(), c, "t")
	require.Error(t, err)
	assert.True(t, faults.IsInjected(err), "%v", err)
	var status interface{ HTTPStatusCode() int }
	require.True(t, errors.As(err, &status))
	assert.Equal(t, http.StatusInternalServerError, status.HTTPStatusCode())
	assert.Equal(t, 3, in.Stats().Attempts)
	assert.Equal(t, 1, in.Stats().Exhausted["DynamoDB.GetItem"])
}

func TestSkipMatchAndService(t *testing.T) {
	in := faults.New()
	c := newClients(t, in, 1)
	ctx := context.Background()
	f := in.Add(&faults.Fault{
		Op: "GetItem", Kind: faults.Fail, Skip: 1, Times: -1,
		Match: func(p any) bool { return aws.ToString(p.(*dynamodb.GetItemInput).TableName) == "audit" },
	})
	other := in.Add(&faults.Fault{Service: faults.Scheduler, Op: "GetItem", Kind: faults.Fail, Times: -1})

	require.NoError(t, getItem(ctx, c, "state"), "not matched")
	require.NoError(t, getItem(ctx, c, "audit"), "skipped once")
	require.Error(t, getItem(ctx, c, "audit"))
	require.Error(t, getItem(ctx, c, "audit"))
	assert.Equal(t, 2, f.Hits())
	assert.Zero(t, other.Hits(), "a fault for another service never fires")

	in.Clear()
	require.NoError(t, getItem(ctx, c, "audit"))
}

func TestDisableTurnsEverythingOff(t *testing.T) {
	in := faults.New(faults.WithRate(faults.Rate{P: 1}))
	c := newClients(t, in, 1)
	f := in.Add(&faults.Fault{Op: "GetItem", Kind: faults.Fail, Times: -1})
	ctx := context.Background()
	require.Error(t, getItem(ctx, c, "t"))

	in.Disable()
	assert.False(t, in.Enabled())
	for range 5 {
		require.NoError(t, getItem(ctx, c, "t"))
	}
	assert.Equal(t, 1, f.Hits())
	assert.Equal(t, 6, in.Calls("GetItem"), "calls are counted while disabled")

	in.Enable()
	require.Error(t, getItem(ctx, c, "t"))
}

func TestRateOnChosenServices(t *testing.T) {
	in := faults.New(faults.WithRate(faults.Rate{P: 1, Services: []string{faults.DynamoDB}, Kinds: []faults.Kind{faults.Fail}}))
	c := newClients(t, in, 1)
	ctx := context.Background()
	require.Error(t, getItem(ctx, c, "t"))
	_, err := c.sched.ListSchedules(ctx, &scheduler.ListSchedulesInput{})
	require.NoError(t, err, "Scheduler is not among the rate's services")
	st := in.Stats()
	assert.Equal(t, 1, st.InjectedTotal())
	assert.Equal(t, 1, st.InjectedByService(faults.DynamoDB))
	assert.Zero(t, st.InjectedByService(faults.Scheduler))
	assert.Equal(t, 1, st.CallsTo(faults.Scheduler))

	in.SetRate(faults.Rate{P: 1, Exempt: func(service, op string) bool { return op == "GetItem" }, Kinds: []faults.Kind{faults.Fail}})
	require.NoError(t, getItem(ctx, c, "t"), "exempt")
	_, err = c.sched.ListSchedules(ctx, &scheduler.ListSchedulesInput{})
	require.Error(t, err, "every service when none are named")
}

// runRate makes n sequential calls under rate r and returns the kinds
// injected, in order (one attempt per call).
func runRate(t *testing.T, r faults.Rate, n int) ([]string, faults.Stats) {
	in := faults.New(faults.WithRate(r))
	c := newClients(t, in, 1)
	var seq []string
	for range n {
		err := getItem(context.Background(), c, "t")
		switch {
		case err == nil:
			seq = append(seq, "-")
		default:
			seq = append(seq, err.Error()[:10])
		}
	}
	return seq, in.Stats()
}

func TestRateIsSeededAndReproducible(t *testing.T) {
	r := faults.Rate{P: 0.3, Seed: 42}
	a, sa := runRate(t, r, 300)
	b, sb := runRate(t, r, 300)
	assert.Equal(t, a, b, "same seed, same order of calls: same faults")
	assert.Equal(t, sa.Injected, sb.Injected)
	n := sa.InjectedTotal()
	assert.InDelta(t, 90, n, 30, "about 30%% of 300")
	for _, k := range []faults.Kind{faults.Throttle, faults.ServerError, faults.Timeout} {
		assert.NotZero(t, sa.InjectedByKind(k), "default kinds include %s", k)
	}
	assert.Zero(t, sa.InjectedByKind(faults.Fail)+sa.InjectedByKind(faults.LostResponse))

	c, _ := runRate(t, faults.Rate{P: 0.3, Seed: 43}, 300)
	assert.NotEqual(t, a, c, "another seed, other faults")
}

func TestScanDetector(t *testing.T) {
	var got []string
	in := faults.New(faults.WithScanDetector(func(service string) { got = append(got, service) }))
	c := newClients(t, in, 1)
	_, err := c.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("t")})
	require.ErrorIs(t, err, faults.ErrScan)
	assert.Equal(t, []string{faults.DynamoDB}, got)
	assert.Equal(t, 1, in.Calls("Scan"))
	assert.Zero(t, c.srv.count("Scan"))

	plain := faults.New()
	c = newClients(t, plain, 1)
	_, err = c.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String("t")})
	require.NoError(t, err, "without the detector a scan is only counted")
}

func TestQueryCountsIndex(t *testing.T) {
	in := faults.New()
	c := newClients(t, in, 1)
	_, err := c.db.Query(context.Background(), &dynamodb.QueryInput{TableName: aws.String("t"), IndexName: aws.String("due")})
	require.NoError(t, err)
	assert.Equal(t, 1, in.Calls("Query"))
	assert.Equal(t, 1, in.Calls("Query:due"))
	assert.Contains(t, in.Timings(), "Query 1 calls")
	in.ResetCounts()
	assert.Zero(t, in.Calls("Query"))
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]faults.Kind{
		"fail": faults.Fail, "throttle": faults.Throttle, "500": faults.ServerError,
		"timeout": faults.Timeout, "lost": faults.LostResponse, " Throttled ": faults.Throttle,
	} {
		got, err := faults.ParseKind(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := faults.ParseKind("gremlins")
	assert.Error(t, err)
	for _, k := range faults.Kinds {
		got, err := faults.ParseKind(string(k))
		require.NoError(t, err)
		assert.Equal(t, k, got)
	}
}

func TestConcurrentUse(t *testing.T) {
	in := faults.New(faults.WithRate(faults.Rate{P: 0.2, Seed: 7}))
	c := newClients(t, in, 3)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				_ = getItem(context.Background(), c, "t")
				in.Stats()
			}
		})
	}
	wg.Wait()
	st := in.Stats()
	assert.Equal(t, 400, st.Calls["DynamoDB.GetItem"])
	assert.Equal(t, st.Attempts-400, st.Retries)
}

func TestPerCallFaultOutlastsSDKRetries(t *testing.T) {
	in := faults.New(faults.WithRate(faults.Rate{PerCall: 1, Kinds: []faults.Kind{faults.ServerError}}))
	c := newClients(t, in, 3)
	err := getItem(context.Background(), c, "t")
	require.Error(t, err)
	assert.True(t, faults.IsInjected(err), "%v", err)
	st := in.Stats()
	assert.Equal(t, 3, st.Attempts, "every attempt failed")
	assert.Equal(t, 3, st.Injected[faults.ServerError]["DynamoDB.GetItem"])
	assert.Equal(t, 1, st.CallFaults[faults.ServerError]["DynamoDB.GetItem"])
	assert.Equal(t, 1, st.CallFaultsTotal())
	assert.Equal(t, 1, st.CallFaultsIn(faults.DynamoDB))
	assert.Equal(t, 1, st.ExhaustedTotal())
	assert.Zero(t, c.srv.count("GetItem"))
}

func TestPerCallRateIsPerCall(t *testing.T) {
	in := faults.New(faults.WithRate(faults.Rate{PerCall: 0.3, Seed: 5}))
	c := newClients(t, in, 3)
	failed := 0
	for range 300 {
		if getItem(context.Background(), c, "t") != nil {
			failed++
		}
	}
	st := in.Stats()
	assert.InDelta(t, 90, failed, 30, "about 30%% of the calls fail, whatever the SDK retries")
	assert.Equal(t, failed, st.CallFaultsTotal())
	assert.Equal(t, failed, st.ExhaustedTotal())
}

func TestBurstFailsTheFollowingCalls(t *testing.T) {
	in := faults.New(faults.WithRate(faults.Rate{PerCall: 1, Burst: 2, Kinds: []faults.Kind{faults.Throttle}}))
	c := newClients(t, in, 1)
	ctx := context.Background()
	for range 4 {
		require.Error(t, getItem(ctx, c, "t"))
	}
	st := in.Stats()
	assert.Equal(t, 2, st.Bursts, "a fault and the two calls after it, then a new burst")
	assert.Equal(t, 4, st.CallFaultsTotal())

	in = faults.New(faults.WithRate(faults.Rate{PerCall: 0.5, Burst: 1000, BurstFor: time.Millisecond, Seed: 3}))
	c = newClients(t, in, 1)
	for range 50 {
		_ = getItem(ctx, c, "t")
	}
	time.Sleep(5 * time.Millisecond)
	before := in.Stats().Bursts
	for range 50 {
		_ = getItem(ctx, c, "t")
	}
	assert.Greater(t, in.Stats().Bursts, before, "a burst ends after BurstFor")
}

func TestExemptKind(t *testing.T) {
	in := faults.New(faults.WithRate(faults.Rate{P: 1, Kinds: []faults.Kind{faults.LostResponse, faults.Fail},
		ExemptKind: func(service, op string, k faults.Kind) bool {
			return service == faults.DynamoDB && k == faults.LostResponse
		}}))
	c := newClients(t, in, 1)
	for range 20 {
		require.Error(t, getItem(context.Background(), c, "t"))
	}
	st := in.Stats()
	assert.Equal(t, 20, st.InjectedByKind(faults.Fail))
	assert.Zero(t, st.InjectedByKind(faults.LostResponse))
	assert.Zero(t, c.srv.count("GetItem"))

	in.SetRate(faults.Rate{P: 1, Kinds: []faults.Kind{faults.LostResponse}, ExemptKind: func(string, string, faults.Kind) bool { return true }})
	require.NoError(t, getItem(context.Background(), c, "t"), "exempt from every kind: no fault")
}

func TestTimeoutsTakeTime(t *testing.T) {
	const delay = 30 * time.Millisecond
	for _, k := range []faults.Kind{faults.Timeout, faults.LostResponse} {
		t.Run(string(k), func(t *testing.T) {
			in := faults.New(faults.WithRate(faults.Rate{PerCall: 1, Kinds: []faults.Kind{k}, Delay: delay}))
			c := newClients(t, in, 2)
			t0 := time.Now()
			err := getItem(context.Background(), c, "t")
			took := time.Since(t0)
			require.Error(t, err)
			assert.True(t, faults.IsInjected(err))
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.GreaterOrEqual(t, took, 2*delay, "two attempts, each waiting")
			assert.GreaterOrEqual(t, in.Stats().Delayed, 2*delay)
			want := 0
			if k == faults.LostResponse {
				want = 2 // sent, the answer lost
			}
			assert.Equal(t, want, c.srv.count("GetItem"))

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
			defer cancel()
			in.SetRate(faults.Rate{PerCall: 1, Kinds: []faults.Kind{k}, Delay: time.Hour})
			t0 = time.Now()
			require.Error(t, getItem(ctx, c, "t"))
			assert.Less(t, time.Since(t0), time.Second, "the wait ends with the call's context")
		})
	}
}
