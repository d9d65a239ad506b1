// Package schedule is the EventBridge Scheduler adapter: one-shot schedules
// named "<action>-<requestId>" in one group that invoke the grant or revoke
// function with a small JSON payload, then delete themselves.
//
// Fire times. An at() expression has one-second syntax but the service
// invokes the target anywhere within that minute (at 10:00:30 fires between
// 10:00:00 and 10:00:59, so up to a minute early; the domain allows for this
// with access.ScheduleTolerance), and a schedule whose time has passed never
// fires. So FireTime rounds the wanted time up to the next whole second, and
// when that is less than MinLead ahead of the clock it uses now+MinLead
// instead: a revoke whose end has already passed still fires within about a
// minute. The caller revokes directly in that case as well; the sweeper is
// the net under both.
//
// Idempotency. The schedule name is the key: creating a name that exists is
// success, deleting a missing one is success, and rescheduling a missing one
// creates it.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/jitaccess/jit/internal/access"
)

// MinLead is how far ahead of now a schedule is placed at the least, so that
// it is still in the future when the service evaluates it.
const MinLead = time.Minute

// Defaults for the target retry policy.
const (
	DefaultMaxRetries  int32 = 3
	DefaultMaxEventAge       = time.Hour
)

// expressionLayout is the at() time format, evaluated in UTC.
const expressionLayout = "2006-01-02T15:04:05"

// Actions the system schedules (the same strings as app.ActionGrant/ActionRevoke).
const (
	actionGrant  = "grant"
	actionRevoke = "revoke"
)

// validName is the Scheduler constraint for schedule and group names.
func validName(s string) bool { return isNameOf(s, 64) }

// isNameOf: 1 to max of [0-9A-Za-z_.-] (no regexp: a bounded repetition
// costs every cold start its compile).
func isNameOf(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// API is the part of the Scheduler client this adapter uses; *scheduler.Client satisfies it.
type API interface {
	CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, opts ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
	UpdateSchedule(ctx context.Context, in *scheduler.UpdateScheduleInput, opts ...func(*scheduler.Options)) (*scheduler.UpdateScheduleOutput, error)
	DeleteSchedule(ctx context.Context, in *scheduler.DeleteScheduleInput, opts ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
}

// Config says where schedules live and what they invoke.
type Config struct {
	Group   string
	RoleARN string // the role the service assumes to invoke the targets
	DLQARN  string
	// Targets maps an action ("grant", "revoke") to the function ARN it invokes.
	Targets map[string]string
	// MaxRetries is the target retry count (0..185); zero means DefaultMaxRetries.
	MaxRetries int32
	// MaxEventAge bounds retrying (1m..24h, whole seconds); zero means DefaultMaxEventAge.
	MaxEventAge time.Duration
}

// Scheduler creates, moves and deletes one-shot schedules. It satisfies app.Scheduler.
type Scheduler struct {
	client API
	cfg    Config
	clock  func() time.Time
}

// New checks cfg and returns a Scheduler; a nil clock means time.Now. A bad
// config is KindInvalid naming every problem at once.
func New(client API, cfg Config, clock func() time.Time) (*Scheduler, error) {
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	}
	if cfg.MaxEventAge == 0 {
		cfg.MaxEventAge = DefaultMaxEventAge
	}
	var missing, bad []string
	if client == nil {
		missing = append(missing, "client")
	}
	switch {
	case cfg.Group == "":
		missing = append(missing, "Group")
	case !validName(cfg.Group):
		bad = append(bad, fmt.Sprintf("Group %q is not a valid schedule group name", cfg.Group))
	}
	if cfg.RoleARN == "" {
		missing = append(missing, "RoleARN")
	}
	if cfg.DLQARN == "" {
		missing = append(missing, "DLQARN")
	}
	if len(cfg.Targets) == 0 {
		missing = append(missing, "Targets")
	}
	for _, action := range slices.Sorted(maps.Keys(cfg.Targets)) {
		switch {
		case action != actionGrant && action != actionRevoke:
			bad = append(bad, fmt.Sprintf("Targets has unknown action %q (want grant or revoke)", action))
		case cfg.Targets[action] == "":
			missing = append(missing, "Targets["+action+"]")
		}
	}
	if cfg.MaxRetries < 0 || cfg.MaxRetries > 185 {
		bad = append(bad, fmt.Sprintf("MaxRetries %d is outside 0..185", cfg.MaxRetries))
	}
	if cfg.MaxEventAge < time.Minute || cfg.MaxEventAge > 24*time.Hour || cfg.MaxEventAge%time.Second != 0 {
		bad = append(bad, fmt.Sprintf("MaxEventAge %s is outside 1m..24h or not whole seconds", cfg.MaxEventAge))
	}
	if len(missing) > 0 {
		bad = append([]string{"missing " + strings.Join(missing, ", ")}, bad...)
	}
	if len(bad) > 0 {
		return nil, access.Errorf(access.KindInvalid, "schedule config: %s", strings.Join(bad, "; "))
	}
	if clock == nil {
		clock = time.Now
	}
	cfg.Targets = maps.Clone(cfg.Targets) // the caller keeps theirs
	return &Scheduler{client: client, cfg: cfg, clock: clock}, nil
}

// FireTime is when a schedule for at is placed, given the time now: at
// rounded up to a whole second, but never less than MinLead after now. The
// result is in UTC.
func FireTime(at, now time.Time) time.Time {
	t := ceilSecond(at)
	if earliest := ceilSecond(now.Add(MinLead)); t.Before(earliest) {
		return earliest
	}
	return t
}

func ceilSecond(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}

// Expression is the at() schedule expression for t, which must be UTC.
func Expression(t time.Time) string {
	return "at(" + t.UTC().Format(expressionLayout) + ")"
}

// Name is the schedule name for an action on a request.
func Name(action, requestID string) string { return action + "-" + requestID }

// Schedule creates "<action>-<requestID>" to fire at FireTime(at, now); a
// schedule of that name already there counts as success.
func (s *Scheduler) Schedule(ctx context.Context, action, requestID string, at time.Time) error {
	d, err := s.definition(action, requestID, at)
	if err != nil {
		return err
	}
	return s.create(ctx, d)
}

// Reschedule moves "<action>-<requestID>" to FireTime(at, now), creating it
// when it does not exist.
func (s *Scheduler) Reschedule(ctx context.Context, action, requestID string, at time.Time) error {
	d, err := s.definition(action, requestID, at)
	if err != nil {
		return err
	}
	if found, err := s.update(ctx, d); found || err != nil {
		return err
	}
	// Gone (fired, deleted, or never made): create it. If someone else
	// created it meanwhile, the create is a no-op, so move theirs once more.
	if _, err := s.client.CreateSchedule(ctx, d.createInput()); err != nil {
		if !isConflict(err) {
			return wrap(err, "CreateSchedule", d.name)
		}
		found, err := s.update(ctx, d)
		if err == nil && !found {
			return access.Errorf(access.KindInternal, "scheduler UpdateSchedule %s: schedule vanished while being rescheduled", d.name)
		}
		return err
	}
	return nil
}

// Unschedule deletes "<action>-<requestID>"; a missing schedule counts as success.
func (s *Scheduler) Unschedule(ctx context.Context, action, requestID string) error {
	name, err := scheduleName(action, requestID)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{
		Name:      aws.String(name),
		GroupName: aws.String(s.cfg.Group),
	})
	if err != nil && !isNotFound(err) {
		return wrap(err, "DeleteSchedule", name)
	}
	return nil
}

// definition is everything a schedule is made of; the update API needs all of it again.
type definition struct {
	name, group, expression string
	target                  *types.Target
}

func (s *Scheduler) definition(action, requestID string, at time.Time) (definition, error) {
	name, err := scheduleName(action, requestID)
	if err != nil {
		return definition{}, err
	}
	arn, ok := s.cfg.Targets[action]
	if !ok {
		return definition{}, access.Errorf(access.KindInvalid, "no schedule target configured for action %q", action)
	}
	input, err := Payload{Action: action, RequestID: requestID}.Marshal()
	if err != nil {
		return definition{}, err
	}
	return definition{
		name:       name,
		group:      s.cfg.Group,
		expression: Expression(FireTime(at, s.clock())),
		target: &types.Target{
			Arn:     aws.String(arn),
			RoleArn: aws.String(s.cfg.RoleARN),
			Input:   aws.String(string(input)),
			RetryPolicy: &types.RetryPolicy{
				MaximumRetryAttempts:     aws.Int32(s.cfg.MaxRetries),
				MaximumEventAgeInSeconds: aws.Int32(int32(s.cfg.MaxEventAge / time.Second)),
			},
			DeadLetterConfig: &types.DeadLetterConfig{Arn: aws.String(s.cfg.DLQARN)},
		},
	}, nil
}

func (d definition) createInput() *scheduler.CreateScheduleInput {
	return &scheduler.CreateScheduleInput{
		Name:                       aws.String(d.name),
		GroupName:                  aws.String(d.group),
		ScheduleExpression:         aws.String(d.expression),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      types.ActionAfterCompletionDelete,
		State:                      types.ScheduleStateEnabled,
		Target:                     d.target,
	}
}

func (d definition) updateInput() *scheduler.UpdateScheduleInput {
	c := d.createInput()
	return &scheduler.UpdateScheduleInput{
		Name:                       c.Name,
		GroupName:                  c.GroupName,
		ScheduleExpression:         c.ScheduleExpression,
		ScheduleExpressionTimezone: c.ScheduleExpressionTimezone,
		FlexibleTimeWindow:         c.FlexibleTimeWindow,
		ActionAfterCompletion:      c.ActionAfterCompletion,
		State:                      c.State,
		Target:                     c.Target,
	}
}

func (s *Scheduler) create(ctx context.Context, d definition) error {
	if _, err := s.client.CreateSchedule(ctx, d.createInput()); err != nil && !isConflict(err) {
		return wrap(err, "CreateSchedule", d.name)
	}
	return nil
}

// update moves an existing schedule; found is false when there is none.
func (s *Scheduler) update(ctx context.Context, d definition) (found bool, err error) {
	_, err = s.client.UpdateSchedule(ctx, d.updateInput())
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return false, wrap(err, "UpdateSchedule", d.name)
}

// scheduleName checks the action and builds a name the service will accept,
// so bad input fails here rather than as a remote validation error.
func scheduleName(action, requestID string) (string, error) {
	if action != actionGrant && action != actionRevoke {
		return "", access.Errorf(access.KindInvalid, "unknown schedule action %q (want grant or revoke)", action)
	}
	if requestID == "" {
		return "", access.FieldErrorf("requestId", "must not be empty")
	}
	name := Name(action, requestID)
	if !validName(name) {
		return "", access.Errorf(access.KindInvalid,
			"schedule name %q must be 1-64 characters of letters, digits, '.', '_' and '-'", name)
	}
	return name, nil
}

// GroupAPI is the part of the Scheduler client EnsureGroup uses.
type GroupAPI interface {
	GetScheduleGroup(ctx context.Context, in *scheduler.GetScheduleGroupInput, opts ...func(*scheduler.Options)) (*scheduler.GetScheduleGroupOutput, error)
	CreateScheduleGroup(ctx context.Context, in *scheduler.CreateScheduleGroupInput, opts ...func(*scheduler.Options)) (*scheduler.CreateScheduleGroupOutput, error)
}

// EnsureGroup creates the schedule group name unless it exists, for the local
// stack and tests (in AWS the template creates it). It looks first because
// moto's CreateScheduleGroup silently replaces an existing group, dropping
// its schedules; a ConflictException from a concurrent creator is success.
func EnsureGroup(ctx context.Context, client GroupAPI, name string) error {
	if !validName(name) {
		return access.Errorf(access.KindInvalid, "schedule group name %q must be 1-64 characters of letters, digits, '.', '_' and '-'", name)
	}
	_, err := client.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(name)})
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return wrap(err, "GetScheduleGroup", name)
	}
	if _, err := client.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(name)}); err != nil && !isConflict(err) {
		return wrap(err, "CreateScheduleGroup", name)
	}
	return nil
}

func isConflict(err error) bool {
	var e *types.ConflictException
	return errors.As(err, &e)
}

func isNotFound(err error) bool {
	var e *types.ResourceNotFoundException
	return errors.As(err, &e)
}

func wrap(err error, op, name string) error {
	return access.Wrap(access.KindInternal, err, fmt.Sprintf("scheduler %s %s", op, name))
}
