package app

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/catalog"
)

// System actors, as they appear in the audit trail.
const (
	ActorPolicy  = "system:policy"
	ActorGrant   = "system:grant"
	ActorRevoke  = "system:revoke"
	ActorSweeper = "system:sweeper"
)

// Service holds the use cases. Every field but Catalog and Store has a
// usable default, filled by New.
type Service struct {
	Store     Store
	Catalog   *catalog.Catalog
	Scheduler Scheduler
	Providers map[access.ProviderKind]Provider
	Notifier  Notifier
	Tokens    Tokens
	Metrics   Metrics
	Clock     Clock
	Log       *slog.Logger
	// NewID returns a new sortable request id.
	NewID func() string
	// Sleep waits between retries; tests make it instant.
	Sleep func(ctx context.Context, d time.Duration) error
	// BaseURL is where the approval pages are served; links are BaseURL/approvals/<token>.
	BaseURL string

	// Attempts is the retry budget for provider and scheduler calls within
	// one invocation, on top of the SDK's own retries; Backoff the first wait.
	Attempts int
	Backoff  time.Duration
	// MaxLeadTime bounds how far ahead a start may be asked for.
	MaxLeadTime time.Duration
	// SweepLimit bounds the due items one sweep drives; DriftBatch the ACTIVE
	// grants one sweep checks against IAM.
	SweepLimit int
	DriftBatch int
	// SweepConcurrency is how many due items a sweep drives at once.
	SweepConcurrency int
}

// New fills defaults for everything not set.
func New(s Service) *Service {
	if s.Clock == nil {
		s.Clock = time.Now
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.NewID == nil {
		s.NewID = func() string { return ulid.MustNew(ulid.Timestamp(time.Now()), rand.Reader).String() }
	}
	if s.Sleep == nil {
		s.Sleep = sleep
	}
	if s.Metrics == nil {
		s.Metrics = noMetrics{}
	}
	if s.Notifier == nil {
		s.Notifier = noNotifier{}
	}
	if s.Attempts <= 0 {
		s.Attempts = 4
	}
	if s.Backoff <= 0 {
		s.Backoff = 200 * time.Millisecond
	}
	if s.MaxLeadTime <= 0 {
		s.MaxLeadTime = 30 * 24 * time.Hour
	}
	if s.SweepLimit <= 0 {
		s.SweepLimit = 500
	}
	if s.DriftBatch <= 0 {
		s.DriftBatch = 50
	}
	if s.SweepConcurrency <= 0 {
		s.SweepConcurrency = 8
	}
	return &s
}

func (s *Service) now() time.Time { return s.Clock().UTC() }

// Caller is the authenticated identity behind an API call.
type Caller struct {
	Identity string
}

func (s *Service) isAdmin(identity string) bool {
	return s.Catalog != nil && s.Catalog.IsAdmin(identity)
}

// apply reads the request, runs event on it and stores the result, re-reading
// and re-applying when another writer changed the request in between, so a
// lost race is only an error when the domain refuses the event on the new state.
func (s *Service) apply(ctx context.Context, id string, e func(access.Request) access.Event) (prev, next access.Request, err error) {
	for range 5 {
		prev, err = s.Store.Get(ctx, id)
		if err != nil {
			return prev, prev, err
		}
		next, err = s.applyTo(ctx, prev, e(prev))
		if !access.IsKind(err, access.KindConflict) || errors.Is(err, errDomain) {
			return prev, next, unwrapDomain(err)
		}
	}
	return prev, next, err
}

// errDomain marks conflicts the domain raised (the event is refused on the
// current state), as opposed to a stale write, which is worth retrying.
var errDomain = errors.New("refused by the lifecycle")

type domainError struct{ err error }

func (d domainError) Error() string   { return d.err.Error() }
func (d domainError) Unwrap() []error { return []error{d.err, errDomain} }
func unwrapDomain(err error) error {
	var d domainError
	if errors.As(err, &d) {
		return d.err
	}
	return err
}

// applyTo runs one event on a known version of the request and stores it.
func (s *Service) applyTo(ctx context.Context, r access.Request, e access.Event) (access.Request, error) {
	next, rec, err := access.Apply(r, e, s.now())
	if err != nil {
		return r, domainError{err}
	}
	if err := s.Store.Transition(ctx, r, next, rec); err != nil {
		return r, err
	}
	s.Log.InfoContext(ctx, "transition", "requestId", r.ID, "event", e.Type, "actor", e.Actor, "from", r.Status, "to", next.Status)
	return next, nil
}

// notify never fails a use case: a lost email must not undo a grant or a
// revoke. Failures are logged and counted.
func (s *Service) notify(ctx context.Context, n access.Notice) {
	if len(n.To) == 0 {
		return
	}
	if err := s.Notifier.Notify(ctx, n); err != nil {
		s.Metrics.Count(ctx, "NotifyFailures", 1)
		s.Log.ErrorContext(ctx, "notify failed", "requestId", n.Request.ID, "kind", n.Kind, "error", err)
	}
}

func (s *Service) admins() []string {
	if s.Catalog == nil {
		return nil
	}
	return s.Catalog.Admins
}

// retry runs fn up to s.Attempts times with doubling waits. Domain errors
// other than internal ones are final at once: retrying cannot fix bad input.
func (s *Service) retry(ctx context.Context, op string, fn func() error) error {
	wait := s.Backoff
	var err error
	for attempt := 1; attempt <= s.Attempts; attempt++ {
		if err = fn(); err == nil {
			return nil
		}
		if k := access.KindOf(err); k != access.KindInternal && k != access.KindTooMany {
			return err
		}
		s.Metrics.Count(ctx, "Retries", 1)
		s.Log.WarnContext(ctx, "retrying", "op", op, "attempt", attempt, "error", err)
		if attempt == s.Attempts {
			break
		}
		if serr := s.Sleep(ctx, wait); serr != nil {
			return errors.Join(err, serr)
		}
		wait *= 2
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type noMetrics struct{}

func (noMetrics) Count(context.Context, string, float64)          {}
func (noMetrics) Duration(context.Context, string, time.Duration) {}

type noNotifier struct{}

func (noNotifier) Notify(context.Context, access.Notice) error { return nil }
