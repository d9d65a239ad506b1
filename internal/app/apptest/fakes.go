// Package apptest has in-memory fakes of the app ports that are not
// storage (the store's fake is dynamo/memstore), with fault injection.
package apptest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jitaccess/jit/internal/access"
)

// Clock is a settable clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t.UTC()} }

// Now is the app.Clock.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.t = t.UTC(); c.mu.Unlock() }

// Faults fails calls by operation name: Fail(op, n) fails the next n calls
// (n < 0: every call).
type Faults struct {
	mu    sync.Mutex
	left  map[string]int
	calls map[string]int
}

// Fail makes the next n calls of op fail (n < 0 for always, 0 to clear).
func (f *Faults) Fail(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.left == nil {
		f.left = map[string]int{}
	}
	f.left[op] = n
}

// Calls counts the calls of op so far.
func (f *Faults) Calls(op string) int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls[op] }

func (f *Faults) hit(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[op]++
	n := f.left[op]
	if n == 0 {
		return nil
	}
	if n > 0 {
		f.left[op] = n - 1
	}
	return access.Wrap(access.KindInternal, fmt.Errorf("injected fault in %s", op), op+" failed")
}

// Scheduler keeps schedules in memory.
type Scheduler struct {
	Faults
	mu        sync.Mutex
	schedules map[string]time.Time
}

func (s *Scheduler) Schedule(_ context.Context, action, id string, at time.Time) error {
	if err := s.hit("Schedule"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schedules == nil {
		s.schedules = map[string]time.Time{}
	}
	if _, ok := s.schedules[action+"-"+id]; !ok {
		s.schedules[action+"-"+id] = at
	}
	return nil
}

func (s *Scheduler) Reschedule(_ context.Context, action, id string, at time.Time) error {
	if err := s.hit("Reschedule"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schedules == nil {
		s.schedules = map[string]time.Time{}
	}
	s.schedules[action+"-"+id] = at
	return nil
}

func (s *Scheduler) Unschedule(_ context.Context, action, id string) error {
	if err := s.hit("Unschedule"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.schedules, action+"-"+id)
	return nil
}

// At returns the time of schedule "<action>-<id>".
func (s *Scheduler) At(action, id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.schedules[action+"-"+id]
	return t, ok
}

// Names lists the schedules.
func (s *Scheduler) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.schedules {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Provider is a fake IAM: a set of access keys that are in place.
type Provider struct {
	Faults
	mu      sync.Mutex
	present map[string]bool
}

// accessKey is the access itself, as IAM would see it.
func accessKey(g access.Grant) string { return g.LedgerKey() }

func (p *Provider) Grant(_ context.Context, g access.Grant) error {
	if err := p.hit("Grant"); err != nil {
		return err
	}
	p.Set(g, true)
	return nil
}

func (p *Provider) Revoke(_ context.Context, g access.Grant) error {
	if err := p.hit("Revoke"); err != nil {
		return err
	}
	p.Set(g, false)
	return nil
}

func (p *Provider) Check(_ context.Context, g access.Grant, _ bool) (bool, error) {
	if err := p.hit("Check"); err != nil {
		return false, err
	}
	return p.Has(g), nil
}

// Set puts access in place or removes it, as someone outside the system might.
func (p *Provider) Set(g access.Grant, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.present == nil {
		p.present = map[string]bool{}
	}
	if on {
		p.present[accessKey(g)] = true
	} else {
		delete(p.present, accessKey(g))
	}
}

// Has reports whether the access is in place.
func (p *Provider) Has(g access.Grant) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.present[accessKey(g)]
}

// Count is how many pieces of access are in place.
func (p *Provider) Count() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.present) }

// Notifier records notices.
type Notifier struct {
	Faults
	mu   sync.Mutex
	sent []access.Notice
}

func (n *Notifier) Notify(_ context.Context, notice access.Notice) error {
	if err := n.hit("Notify"); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, notice)
	return nil
}

// Sent returns the notices of a kind (all if kind is empty).
func (n *Notifier) Sent(kind access.NoticeKind) []access.Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []access.Notice
	for _, s := range n.sent {
		if kind == "" || s.Kind == kind {
			out = append(out, s)
		}
	}
	return out
}
