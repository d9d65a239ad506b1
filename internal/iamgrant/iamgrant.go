// Package iamgrant holds the IAM providers: they turn an access.Grant into
// IAM changes (group membership, attached managed policy, or a per-grant
// inline policy that expires by itself) and read them back.
//
// Grant and Revoke are idempotent: granting what is there and revoking what
// is gone (NoSuchEntity) both succeed, so duplicate or concurrent deliveries
// are harmless. IAM is eventually consistent, so Check re-reads with a short
// backoff until it sees what the caller expects or its budget ends.
// Throttling and transient faults are left to the SDK retryer.
package iamgrant

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"

	"github.com/jitaccess/jit/internal/access"
)

// IAMAPI is the part of the IAM client the providers use; *iam.Client satisfies it.
type IAMAPI interface {
	AddUserToGroup(ctx context.Context, in *iam.AddUserToGroupInput, opts ...func(*iam.Options)) (*iam.AddUserToGroupOutput, error)
	RemoveUserFromGroup(ctx context.Context, in *iam.RemoveUserFromGroupInput, opts ...func(*iam.Options)) (*iam.RemoveUserFromGroupOutput, error)
	ListGroupsForUser(ctx context.Context, in *iam.ListGroupsForUserInput, opts ...func(*iam.Options)) (*iam.ListGroupsForUserOutput, error)

	AttachUserPolicy(ctx context.Context, in *iam.AttachUserPolicyInput, opts ...func(*iam.Options)) (*iam.AttachUserPolicyOutput, error)
	DetachUserPolicy(ctx context.Context, in *iam.DetachUserPolicyInput, opts ...func(*iam.Options)) (*iam.DetachUserPolicyOutput, error)
	ListAttachedUserPolicies(ctx context.Context, in *iam.ListAttachedUserPoliciesInput, opts ...func(*iam.Options)) (*iam.ListAttachedUserPoliciesOutput, error)
	AttachRolePolicy(ctx context.Context, in *iam.AttachRolePolicyInput, opts ...func(*iam.Options)) (*iam.AttachRolePolicyOutput, error)
	DetachRolePolicy(ctx context.Context, in *iam.DetachRolePolicyInput, opts ...func(*iam.Options)) (*iam.DetachRolePolicyOutput, error)
	ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, opts ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)

	PutUserPolicy(ctx context.Context, in *iam.PutUserPolicyInput, opts ...func(*iam.Options)) (*iam.PutUserPolicyOutput, error)
	DeleteUserPolicy(ctx context.Context, in *iam.DeleteUserPolicyInput, opts ...func(*iam.Options)) (*iam.DeleteUserPolicyOutput, error)
	GetUserPolicy(ctx context.Context, in *iam.GetUserPolicyInput, opts ...func(*iam.Options)) (*iam.GetUserPolicyOutput, error)
	PutRolePolicy(ctx context.Context, in *iam.PutRolePolicyInput, opts ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(ctx context.Context, in *iam.DeleteRolePolicyInput, opts ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, opts ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
}

// Provider has the method set of app.Provider, declared here so this
// package does not import app.
type Provider interface {
	Grant(ctx context.Context, g access.Grant) error
	Revoke(ctx context.Context, g access.Grant) error
	Check(ctx context.Context, g access.Grant, want bool) (bool, error)
}

// Defaults for Config.
const (
	DefaultCheckBudget = 3 * time.Second
	DefaultCheckDelay  = 100 * time.Millisecond
)

// Config tunes the read-back.
type Config struct {
	// CheckBudget is the total time Check may wait between re-reads; zero
	// means DefaultCheckBudget, negative means read once.
	CheckBudget time.Duration
	// CheckDelay is the first wait, doubled each time; zero means DefaultCheckDelay.
	CheckDelay time.Duration
	// Sleep waits d or until ctx ends; nil means a real timer. Tests inject one.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Providers returns the IAM providers by kind.
func Providers(client IAMAPI, cfg Config) map[access.ProviderKind]Provider {
	if cfg.CheckBudget == 0 {
		cfg.CheckBudget = DefaultCheckBudget
	}
	if cfg.CheckDelay <= 0 {
		cfg.CheckDelay = DefaultCheckDelay
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	c := checker{budget: cfg.CheckBudget, delay: cfg.CheckDelay, sleep: cfg.Sleep}
	return map[access.ProviderKind]Provider{
		access.ProviderIAMGroup:           &groupProvider{iam: client, checker: c},
		access.ProviderIAMPolicy:          &policyProvider{iam: client, checker: c},
		access.ProviderIAMTimeboxedPolicy: &timeboxedProvider{iam: client, checker: c},
	}
}

// checker re-reads an eventually consistent observation.
type checker struct {
	budget, delay time.Duration
	sleep         func(context.Context, time.Duration) error
}

// poll calls read until it returns want or the budget is spent, and returns
// the last observation. A read error ends it at once: the SDK has already
// retried what is worth retrying.
func (c checker) poll(ctx context.Context, want bool, read func(context.Context) (bool, error)) (bool, error) {
	delay, waited := c.delay, time.Duration(0)
	for {
		got, err := read(ctx)
		if err != nil || got == want || waited >= c.budget {
			return got, err
		}
		d := min(delay, c.budget-waited)
		if c.sleep(ctx, d) != nil {
			return got, nil // the caller's deadline ended the budget early
		}
		waited += d
		delay *= 2
	}
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

// checkPrincipal rejects a malformed principal, and one of a kind the
// provider cannot serve, before any call to IAM.
func checkPrincipal(p access.Principal, kinds ...access.PrincipalKind) error {
	if p.Name == "" {
		return access.FieldErrorf("principal", "has no name")
	}
	for _, k := range kinds {
		if p.Kind == k {
			return nil
		}
	}
	if len(kinds) == 1 {
		return access.FieldErrorf("principal", "%s: this provider grants to IAM %ss only", p, kinds[0])
	}
	return access.FieldErrorf("principal", "%s: must be an IAM user or role", p)
}

func isNoSuchEntity(err error) bool {
	var e *types.NoSuchEntityException
	return errors.As(err, &e)
}

// wrap names the IAM operation and what it acted on; the detail stays in
// the error chain for the logs. Errors that no retry can cure get a kind
// the app does not retry and a message that says what to fix; the rest
// (throttling, 5xx, timeouts, a missing entity) are internal, so retried.
func wrap(err error, op, what string, p access.Principal) error {
	msg := fmt.Sprintf("iam %s %s for %s", op, what, p)
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "LimitExceeded":
			return access.Wrap(access.KindInvalid, err, msg+": an IAM limit is reached ("+api.ErrorMessage()+"); for inline policies, the principal's total policy size")
		case "NoSuchEntity":
			// Retried all the same: IAM is eventually consistent, and a
			// group or user made moments ago may not be visible yet.
			return access.Wrap(access.KindInternal, err, msg+": it does not exist in IAM ("+api.ErrorMessage()+")")
		case "MalformedPolicyDocument":
			return access.Wrap(access.KindInvalid, err, msg+": IAM refuses the policy document ("+api.ErrorMessage()+")")
		case "AccessDenied", "AccessDeniedException":
			return access.Wrap(access.KindForbidden, err, msg+": the broker is not allowed to (check PrincipalPath, GrantableGroupPrefix, GrantablePolicyArns and the permissions boundary of the deployment)")
		}
	}
	return access.Wrap(access.KindInternal, err, msg)
}

// ignoreNoSuchEntity is for revokes: what is not there is already revoked.
func ignoreNoSuchEntity(err error) error {
	if isNoSuchEntity(err) {
		return nil
	}
	return err
}
