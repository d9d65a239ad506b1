// Package faults injects AWS faults through smithy middleware on an
// aws.Config, for tests, the fault matrix and the soak run.
//
// An Injector is installed on every client built from a config
// (Install). It counts calls per operation and SDK attempts, and injects
// two sorts of fault:
//
//   - targeted faults (Add): fail attempts of one operation, optionally
//     only calls whose input matches, after letting Skip calls through,
//     Times attempts (or every one);
//   - a rate (SetRate), drawn from a seeded generator so that a run in the
//     same call order is reproducible, for the chosen services, one of the
//     chosen kinds, in two modes:
//   - per attempt (Rate.P): each attempt fails with probability P. Faults
//     are decided right after the SDK's retry loop, so a retryable fault is
//     retried by the SDK as a real one would be, and with the SDK's default
//     three attempts almost none reaches the caller;
//   - per call (Rate.PerCall): decided once when the call starts, the fault
//     persists over every attempt the SDK makes, so the caller sees it (a
//     service that stays down for longer than the SDK retries). With
//     Rate.Burst, the next calls of the same operation fail the same way
//     too: an outage long enough to outlast the caller's own retries.
//
// Timeout really takes time: with Rate.Delay it waits that long before
// failing (the request never sent); LostResponse sends the request, waits,
// then loses the answer. Disable turns every fault off (counting goes on);
// Enable turns them on again.
package faults

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Service ids, as the SDK names them (awsmiddleware.GetServiceID).
const (
	IAM            = "IAM"
	Scheduler      = "Scheduler"
	DynamoDB       = "DynamoDB"
	SESv2          = "SESv2"
	SecretsManager = "Secrets Manager"
)

// Kind is what an injected fault looks like to the SDK and the caller.
type Kind string

const (
	// Fail is a server error the SDK does not retry: the caller's own
	// retries have to deal with it.
	Fail Kind = "fails"
	// Throttle is a Throttling error, which the SDK retryer retries.
	Throttle Kind = "throttled"
	// ServerError is an HTTP 500 (InternalFailure), which the SDK retries.
	ServerError Kind = "500"
	// Timeout is an HTTP timeout before the request reached the service
	// (a context deadline error, after Rate.Delay); the SDK retries it.
	Timeout Kind = "times out"
	// LostResponse lets the attempt through, then loses the response as a
	// timeout (after Rate.Delay): the service applied the change, the
	// caller does not know.
	LostResponse Kind = "response lost"
)

// Kinds is every kind, in a fixed order.
var Kinds = []Kind{Fail, Throttle, ServerError, Timeout, LostResponse}

// ParseKind reads a kind by its name or a short alias (fail, throttle,
// 500, timeout, lost).
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "fail", "fails":
		return Fail, nil
	case "throttle", "throttled", "throttling":
		return Throttle, nil
	case "500", "server", "server-error":
		return ServerError, nil
	case "timeout", "times out":
		return Timeout, nil
	case "lost", "lost-response", "response lost":
		return LostResponse, nil
	}
	return "", fmt.Errorf("unknown fault kind %q (want fail, throttle, 500, timeout or lost)", s)
}

// Err is the error an attempt of op fails with.
func (k Kind) Err(op string) error {
	switch k {
	case Throttle:
		return &smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded (injected in " + op + ")", Fault: smithy.FaultClient}
	case ServerError:
		return &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Header: http.Header{}}},
			Err:      &smithy.GenericAPIError{Code: "InternalFailure", Message: "internal server error (injected in " + op + ")", Fault: smithy.FaultServer},
		}
	case Timeout, LostResponse:
		return &smithyhttp.RequestSendError{Err: &url.Error{Op: "POST", URL: "http://injected/" + op, Err: context.DeadlineExceeded}}
	}
	return &smithy.GenericAPIError{Code: "InjectedFault", Message: "injected failure of " + op, Fault: smithy.FaultServer}
}

// IsInjected reports whether err carries an injected fault.
func IsInjected(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "InjectedFault":
			return true
		case "Throttling", "InternalFailure":
			return strings.Contains(api.ErrorMessage(), "(injected in ")
		}
	}
	var ue *url.Error
	return errors.As(err, &ue) && strings.HasPrefix(ue.URL, "http://injected/")
}

// Fault fails attempts of one operation.
type Fault struct {
	// Service limits the fault to one service id; empty means any.
	Service string
	// Op is the operation name, e.g. "AddUserToGroup".
	Op string
	// Match limits the fault to calls whose input it accepts; nil means every call.
	Match func(params any) bool
	Kind  Kind
	// Skip is how many matching calls to let through before failing.
	Skip int
	// Times is how many attempts to fail after that; < 0 means every one,
	// 0 none.
	Times int

	hits int // attempts failed so far, under the injector's lock
	in   *Injector
}

// Hits is how many attempts the fault failed so far.
func (f *Fault) Hits() int {
	if f.in == nil {
		return 0
	}
	f.in.mu.Lock()
	defer f.in.mu.Unlock()
	return f.hits
}

// Rate injects faults at random.
type Rate struct {
	// P is the probability that an attempt fails, from 0 to 1.
	P float64
	// PerCall is the probability that a call fails on every one of its
	// attempts (decided once per call, the kind too), from 0 to 1.
	PerCall float64
	// Burst is how many following calls of the same operation fail the
	// same way after a per-call fault (an outage of that operation); 0
	// means none. BurstFor, when set, ends a burst after that long.
	Burst    int
	BurstFor time.Duration
	// Services are the service ids faulted; empty means every service.
	Services []string
	// Kinds are drawn from uniformly; empty means Throttle, ServerError and Timeout.
	Kinds []Kind
	// Seed makes the draws reproducible (for the same order of calls).
	Seed uint64
	// Exempt, when set, keeps operations it accepts free of rate faults.
	Exempt func(service, op string) bool
	// ExemptKind, when set, keeps the kinds it accepts out of the draw for
	// an operation (e.g. lost responses of non-idempotent writes).
	ExemptKind func(service, op string, k Kind) bool
	// Delay is how long a Timeout waits before failing, and a
	// LostResponse after the answer came, before losing it (bounded by
	// the call's context); zero fails at once.
	Delay time.Duration
}

// Stats is what an Injector counted.
type Stats struct {
	// Calls are SDK operation calls by "Service.Op".
	Calls map[string]int
	// Attempts are HTTP attempts over all calls; Retries the attempts
	// beyond each call's first (what the SDK retryer did).
	Attempts, Retries int
	// OpAttempts are the attempts by "Service.Op".
	OpAttempts map[string]int
	// Injected counts faults by kind, then "Service.Op".
	Injected map[Kind]map[string]int
	// Failed are calls that returned an error to the caller, by
	// "Service.Op"; Exhausted those whose error was an injected fault (the
	// SDK's retries did not get past it).
	Failed, Exhausted map[string]int
	// CallFaults counts the calls faulted per call (Rate.PerCall, bursts
	// included), by kind, then "Service.Op"; Bursts the bursts started.
	CallFaults map[Kind]map[string]int
	Bursts     int
	// Delayed is the time timeouts and lost responses waited.
	Delayed time.Duration
}

// CallFaultsTotal is the number of calls faulted per call.
func (s Stats) CallFaultsTotal() int { return sumKinds(s.CallFaults) }

// sumKinds adds up counts kept by kind, then operation.
func sumKinds(m map[Kind]map[string]int) int {
	n := 0
	for _, ops := range m {
		for _, c := range ops {
			n += c
		}
	}
	return n
}

// CallFaultsIn sums the calls of one service faulted per call.
func (s Stats) CallFaultsIn(service string) int {
	n := 0
	for _, ops := range s.CallFaults {
		n += sumService(ops, service)
	}
	return n
}

// ExhaustedTotal is the number of calls that returned an injected fault.
func (s Stats) ExhaustedTotal() int {
	n := 0
	for _, c := range s.Exhausted {
		n += c
	}
	return n
}

// InjectedTotal is the number of faults injected.
func (s Stats) InjectedTotal() int { return sumKinds(s.Injected) }

// InjectedByKind sums the faults of one kind.
func (s Stats) InjectedByKind(k Kind) int {
	n := 0
	for _, c := range s.Injected[k] {
		n += c
	}
	return n
}

// InjectedByService sums the faults injected into one service.
func (s Stats) InjectedByService(service string) int {
	n := 0
	for _, ops := range s.Injected {
		for op, c := range ops {
			if strings.HasPrefix(op, service+".") {
				n += c
			}
		}
	}
	return n
}

// CallsTo sums the calls to one service.
func (s Stats) CallsTo(service string) int { return sumService(s.Calls, service) }

// AttemptsTo sums the attempts at calls to one service.
func (s Stats) AttemptsTo(service string) int { return sumService(s.OpAttempts, service) }

// ExhaustedIn sums the calls to one service that returned an injected fault.
func (s Stats) ExhaustedIn(service string) int { return sumService(s.Exhausted, service) }

func sumService(m map[string]int, service string) int {
	n := 0
	for op, c := range m {
		if strings.HasPrefix(op, service+".") {
			n += c
		}
	}
	return n
}

// Injector is smithy middleware that counts and injects faults. The zero
// value is not usable; call New.
type Injector struct {
	mu      sync.Mutex
	enabled bool
	faults  []*Fault
	rate    Rate
	rng     *rand.Rand
	calls   map[string]int // by operation name, and "Query:<index>"
	elapsed map[string]time.Duration
	stats   Stats
	bursts  map[string]*burst // by "Service.Op"
	onScan  func(service string)
}

// burst is an outage of one operation after a per-call fault.
type burst struct {
	kind  Kind
	left  int
	until time.Time // zero: no time bound
}

// Option configures an Injector.
type Option func(*Injector)

// WithScanDetector refuses every DynamoDB Scan the system makes and calls
// report with the service id: due work must be found through an index.
func WithScanDetector(report func(service string)) Option {
	return func(in *Injector) { in.onScan = report }
}

// WithRate sets a fault rate from the start.
func WithRate(r Rate) Option { return func(in *Injector) { in.setRate(r) } }

// New returns an enabled Injector with no faults.
func New(opts ...Option) *Injector {
	in := &Injector{enabled: true}
	in.resetCounts()
	in.setRate(Rate{})
	for _, o := range opts {
		o(in)
	}
	return in
}

// Add installs a targeted fault; it stays until Clear.
func (in *Injector) Add(f *Fault) *Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	f.in = in
	in.faults = append(in.faults, f)
	return f
}

// Clear removes the targeted faults (the rate stays).
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = nil
}

// SetRate replaces the fault rate; a zero Rate injects nothing.
func (in *Injector) SetRate(r Rate) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.setRate(r)
}

func (in *Injector) setRate(r Rate) {
	if len(r.Kinds) == 0 {
		r.Kinds = []Kind{Throttle, ServerError, Timeout}
	}
	r.Kinds = slices.Clone(r.Kinds)
	r.Services = slices.Clone(r.Services)
	in.rate = r
	in.rng = rand.New(rand.NewPCG(r.Seed, r.Seed^0x9e3779b97f4a7c15))
	in.bursts = map[string]*burst{}
}

// Enable turns fault injection on.
func (in *Injector) Enable() { in.setEnabled(true) }

// Disable turns every fault off; calls are still counted.
func (in *Injector) Disable() { in.setEnabled(false) }

func (in *Injector) setEnabled(v bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.enabled = v
}

// Enabled reports whether faults are injected.
func (in *Injector) Enabled() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.enabled
}

// Calls is the number of calls of an operation (by name, over all
// services), or of DynamoDB queries of an index as "Query:<index>".
func (in *Injector) Calls(op string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.calls[op]
}

// ResetCounts zeroes every counter (the faults' hits stay).
func (in *Injector) ResetCounts() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.resetCounts()
}

func (in *Injector) resetCounts() {
	in.calls = map[string]int{}
	in.elapsed = map[string]time.Duration{}
	in.stats = Stats{Calls: map[string]int{}, OpAttempts: map[string]int{}, Injected: map[Kind]map[string]int{}, Failed: map[string]int{}, Exhausted: map[string]int{},
		CallFaults: map[Kind]map[string]int{}}
}

// Stats returns a copy of the counters.
func (in *Injector) Stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	s := Stats{
		Calls: maps.Clone(in.stats.Calls), Attempts: in.stats.Attempts, Retries: in.stats.Retries,
		OpAttempts: maps.Clone(in.stats.OpAttempts), Injected: map[Kind]map[string]int{},
		Failed: maps.Clone(in.stats.Failed), Exhausted: maps.Clone(in.stats.Exhausted),
		CallFaults: map[Kind]map[string]int{}, Bursts: in.stats.Bursts, Delayed: in.stats.Delayed,
	}
	for k, ops := range in.stats.Injected {
		s.Injected[k] = maps.Clone(ops)
	}
	for k, ops := range in.stats.CallFaults {
		s.CallFaults[k] = maps.Clone(ops)
	}
	return s
}

// Timings lists the operations by time spent (retries included).
func (in *Injector) Timings() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	ops := make([]string, 0, len(in.elapsed))
	for op := range in.elapsed {
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b string) int {
		if d := in.elapsed[b] - in.elapsed[a]; d != 0 {
			return int(d)
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "%s %d calls %v; ", op, in.calls[op], in.elapsed[op].Round(time.Millisecond))
	}
	return b.String()
}

type callKey struct{}

// call is the state of one SDK operation call across its attempts.
type call struct {
	service, op string
	target      *Fault // the targeted fault this call matched, if any
	sticky      Kind   // the per-call fault of every attempt, if any
	attempts    int
}

// ErrScan is returned for a DynamoDB Scan when the scan detector is on.
var ErrScan = errors.New("faults: DynamoDB Scan is not allowed")

// Install adds the middleware to cfg: the call-level part at Initialize,
// the attempt-level part in Finalize right after the SDK's retry loop.
func (in *Injector) Install(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(stack *middleware.Stack) error {
		if err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("faults.calls", in.handleCall), middleware.After); err != nil {
			return err
		}
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("faults.attempts", in.handleAttempt), "Retry", middleware.After)
	})
}

func (in *Injector) handleCall(ctx context.Context, mi middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	service, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
	key := service + "." + op
	c := &call{service: service, op: op}
	in.mu.Lock()
	in.calls[op]++
	in.stats.Calls[key]++
	if q, ok := mi.Parameters.(*dynamodb.QueryInput); ok {
		in.calls["Query:"+aws.ToString(q.IndexName)]++
	}
	for _, f := range in.faults {
		if f.Op != op || (f.Service != "" && f.Service != service) || (f.Match != nil && !f.Match(mi.Parameters)) {
			continue
		}
		if f.Skip > 0 {
			f.Skip--
			continue
		}
		c.target = f
		break
	}
	if c.target == nil && in.enabled {
		c.sticky = in.callFault(service, op, key)
	}
	onScan := in.onScan
	in.mu.Unlock()
	if op == "Scan" && onScan != nil {
		onScan(service)
		return middleware.InitializeOutput{}, middleware.Metadata{}, ErrScan
	}
	ctx = context.WithValue(ctx, callKey{}, c)
	began := time.Now()
	out, md, err := next.HandleInitialize(ctx, mi)
	in.mu.Lock()
	in.elapsed[op] += time.Since(began)
	if c.attempts > 1 {
		in.stats.Retries += c.attempts - 1
	}
	if err != nil {
		in.stats.Failed[key]++
		if IsInjected(err) {
			in.stats.Exhausted[key]++
		}
	}
	in.mu.Unlock()
	return out, md, err
}

func (in *Injector) handleAttempt(ctx context.Context, mi middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	c, _ := ctx.Value(callKey{}).(*call)
	if c == nil {
		return next.HandleFinalize(ctx, mi)
	}
	in.mu.Lock()
	c.attempts++
	in.stats.Attempts++
	in.stats.OpAttempts[c.service+"."+c.op]++
	kind := Kind("")
	if in.enabled {
		if f := c.target; f != nil && f.Times != 0 {
			if f.Times > 0 {
				f.Times--
			}
			f.hits++
			kind = f.Kind
		} else if c.sticky != "" {
			kind = c.sticky
		} else if in.rate.P > 0 && in.rateApplies(c.service, c.op) && in.rng.Float64() < in.rate.P {
			kind = in.drawKind(c.service, c.op)
		}
	}
	delay := in.rate.Delay
	if kind != "" {
		key := c.service + "." + c.op
		if in.stats.Injected[kind] == nil {
			in.stats.Injected[kind] = map[string]int{}
		}
		in.stats.Injected[kind][key]++
	}
	in.mu.Unlock()
	switch kind {
	case "":
		return next.HandleFinalize(ctx, mi)
	case LostResponse:
		out, md, err := next.HandleFinalize(ctx, mi)
		if err != nil {
			return out, md, err
		}
		in.wait(ctx, delay)
		return middleware.FinalizeOutput{}, md, kind.Err(c.op)
	case Timeout:
		in.wait(ctx, delay)
	}
	return middleware.FinalizeOutput{}, middleware.Metadata{}, kind.Err(c.op)
}

// wait sleeps d or until ctx ends, and counts the time.
func (in *Injector) wait(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t0 := time.Now()
	t := time.NewTimer(d)
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	in.mu.Lock()
	in.stats.Delayed += time.Since(t0)
	in.mu.Unlock()
}

// callFault decides, once per call, whether every attempt of the call
// fails (a burst of the operation going on, or a new per-call fault).
// Called with the lock held.
func (in *Injector) callFault(service, op, key string) Kind {
	r := in.rate
	if r.PerCall <= 0 || !in.rateApplies(service, op) {
		return ""
	}
	var kind Kind
	if b := in.bursts[key]; b != nil && b.left > 0 && (b.until.IsZero() || time.Now().Before(b.until)) {
		b.left--
		kind = b.kind
	} else {
		delete(in.bursts, key)
		if in.rng.Float64() >= r.PerCall {
			return ""
		}
		if kind = in.drawKind(service, op); kind == "" {
			return ""
		}
		if r.Burst > 0 {
			b := &burst{kind: kind, left: r.Burst}
			if r.BurstFor > 0 {
				b.until = time.Now().Add(r.BurstFor)
			}
			in.bursts[key] = b
			in.stats.Bursts++
		}
	}
	if in.stats.CallFaults[kind] == nil {
		in.stats.CallFaults[kind] = map[string]int{}
	}
	in.stats.CallFaults[kind][key]++
	return kind
}

// drawKind draws one of the rate's kinds that op is not exempt from, or
// "" if it is exempt from all. Called with the lock held.
func (in *Injector) drawKind(service, op string) Kind {
	kinds := in.rate.Kinds
	if ex := in.rate.ExemptKind; ex != nil {
		kinds = slices.DeleteFunc(slices.Clone(kinds), func(k Kind) bool { return ex(service, op, k) })
	}
	if len(kinds) == 0 {
		return ""
	}
	return kinds[in.rng.IntN(len(kinds))]
}

// rateApplies reports whether the rate covers the operation (its service
// chosen, the operation not exempt). Called with the lock held.
func (in *Injector) rateApplies(service, op string) bool {
	r := in.rate
	if len(r.Services) > 0 && !slices.Contains(r.Services, service) {
		return false
	}
	return r.Exempt == nil || !r.Exempt(service, op)
}

// FastRetryer is the SDK's standard retryer with maxAttempts attempts, a
// fixed backoff (throttling would otherwise wait a second) and no retry
// quota, so that injected faults are retried quickly and deterministically.
func FastRetryer(maxAttempts int, backoff time.Duration) func() aws.Retryer {
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return backoff, nil })
			o.RateLimiter = ratelimit.None
		})
	}
}
