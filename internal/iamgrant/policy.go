package iamgrant

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/jitaccess/jit/internal/access"
)

// policyProvider grants iam-policy: a managed policy attached to a user or role.
type policyProvider struct {
	iam IAMAPI
	checker
}

func (p *policyProvider) validate(g access.Grant) error {
	if err := checkPrincipal(g.Principal, access.PrincipalUser, access.PrincipalRole); err != nil {
		return err
	}
	if g.Target.PolicyARN == "" {
		return access.FieldErrorf("target.policyArn", "iam-policy needs a policy ARN")
	}
	if !strings.HasPrefix(g.Target.PolicyARN, "arn:") {
		return access.FieldErrorf("target.policyArn", "%q is not an ARN", g.Target.PolicyARN)
	}
	return nil
}

func (p *policyProvider) Grant(ctx context.Context, g access.Grant) error {
	if err := p.validate(g); err != nil {
		return err
	}
	// Attaching an attached policy is a no-op in IAM.
	var err error
	op := "AttachUserPolicy"
	if g.Principal.Kind == access.PrincipalRole {
		op = "AttachRolePolicy"
		_, err = p.iam.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{
			RoleName: aws.String(g.Principal.Name), PolicyArn: aws.String(g.Target.PolicyARN),
		})
	} else {
		_, err = p.iam.AttachUserPolicy(ctx, &iam.AttachUserPolicyInput{
			UserName: aws.String(g.Principal.Name), PolicyArn: aws.String(g.Target.PolicyARN),
		})
	}
	if err != nil {
		return wrap(err, op, "policy "+g.Target.PolicyARN, g.Principal)
	}
	return nil
}

func (p *policyProvider) Revoke(ctx context.Context, g access.Grant) error {
	if err := p.validate(g); err != nil {
		return err
	}
	var err error
	op := "DetachUserPolicy"
	if g.Principal.Kind == access.PrincipalRole {
		op = "DetachRolePolicy"
		_, err = p.iam.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{
			RoleName: aws.String(g.Principal.Name), PolicyArn: aws.String(g.Target.PolicyARN),
		})
	} else {
		_, err = p.iam.DetachUserPolicy(ctx, &iam.DetachUserPolicyInput{
			UserName: aws.String(g.Principal.Name), PolicyArn: aws.String(g.Target.PolicyARN),
		})
	}
	if err = ignoreNoSuchEntity(err); err != nil {
		return wrap(err, op, "policy "+g.Target.PolicyARN, g.Principal)
	}
	return nil
}

func (p *policyProvider) Check(ctx context.Context, g access.Grant, want bool) (bool, error) {
	if err := p.validate(g); err != nil {
		return false, err
	}
	return p.poll(ctx, want, func(ctx context.Context) (bool, error) {
		found, op, err := p.attached(ctx, g)
		if isNoSuchEntity(err) {
			return false, nil // no principal, nothing attached
		}
		if err != nil {
			return false, wrap(err, op, "policy "+g.Target.PolicyARN, g.Principal)
		}
		return found, nil
	})
}

// attached pages through the principal's attached policies looking for the target.
func (p *policyProvider) attached(ctx context.Context, g access.Grant) (bool, string, error) {
	match := func(ps []types.AttachedPolicy) bool {
		for _, ap := range ps {
			if strings.EqualFold(aws.ToString(ap.PolicyArn), g.Target.PolicyARN) {
				return true
			}
		}
		return false
	}
	name := aws.String(g.Principal.Name)
	if g.Principal.Kind == access.PrincipalRole {
		pages := iam.NewListAttachedRolePoliciesPaginator(p.iam, &iam.ListAttachedRolePoliciesInput{RoleName: name})
		for pages.HasMorePages() {
			out, err := pages.NextPage(ctx)
			if err != nil {
				return false, "ListAttachedRolePolicies", err
			}
			if match(out.AttachedPolicies) {
				return true, "", nil
			}
		}
		return false, "", nil
	}
	pages := iam.NewListAttachedUserPoliciesPaginator(p.iam, &iam.ListAttachedUserPoliciesInput{UserName: name})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return false, "ListAttachedUserPolicies", err
		}
		if match(out.AttachedPolicies) {
			return true, "", nil
		}
	}
	return false, "", nil
}
