package iamgrant

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/jitaccess/jit/internal/access"
)

// InlinePolicyPrefix starts the name of every inline policy this system
// puts, followed by the request id.
const InlinePolicyPrefix = "jit-"

// timeboxedProvider grants iam-timeboxed-policy: a per-request inline policy
// whose statements only hold until the grant's end, so the access dies at
// the end even if every revoke path fails.
type timeboxedProvider struct {
	iam IAMAPI
	checker
}

// PolicyName is the inline policy name for a grant.
func PolicyName(requestID string) string { return InlinePolicyPrefix + requestID }

// validate checks what Revoke and Check need: who, and which policy.
func (p *timeboxedProvider) validate(g access.Grant) (string, error) {
	if err := checkPrincipal(g.Principal, access.PrincipalUser, access.PrincipalRole); err != nil {
		return "", err
	}
	if g.RequestID == "" {
		return "", access.FieldErrorf("requestId", "iam-timeboxed-policy needs the request id to name its policy")
	}
	name := PolicyName(g.RequestID)
	if !access.IsIAMName(name, 128) { // IAM's constraint on inline policy names
		return "", access.FieldErrorf("requestId", "%q does not make a valid IAM policy name", g.RequestID)
	}
	return name, nil
}

// document is the timeboxed policy for g, refused when it cannot fit.
func document(g access.Grant) (string, error) {
	if g.Target.PolicyDocument == "" {
		return "", access.FieldErrorf("target.policyDocument", "iam-timeboxed-policy needs a policy document")
	}
	doc, err := access.TimeboxPolicy(g.Target.PolicyDocument, g.EndAt)
	if err != nil {
		return "", err
	}
	limit := access.MaxUserInlinePolicySize
	if g.Principal.Kind == access.PrincipalRole {
		limit = access.MaxRoleInlinePolicySize
	}
	// IAM's limit covers all inline policies of the entity together; this
	// catches a document that can never fit, AWS enforces the rest.
	if n := access.PolicySize(doc); n > limit {
		return "", access.FieldErrorf("target.policyDocument",
			"timeboxed policy is %d characters (whitespace excluded) but IAM allows at most %d of inline policy on a %s",
			n, limit, g.Principal.Kind)
	}
	return doc, nil
}

func (p *timeboxedProvider) Grant(ctx context.Context, g access.Grant) error {
	name, err := p.validate(g)
	if err != nil {
		return err
	}
	doc, err := document(g)
	if err != nil {
		return err
	}
	// Put overwrites, so a repeated grant stays one policy.
	op := "PutUserPolicy"
	if g.Principal.Kind == access.PrincipalRole {
		op = "PutRolePolicy"
		_, err = p.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
			RoleName: aws.String(g.Principal.Name), PolicyName: aws.String(name), PolicyDocument: aws.String(doc),
		})
	} else {
		_, err = p.iam.PutUserPolicy(ctx, &iam.PutUserPolicyInput{
			UserName: aws.String(g.Principal.Name), PolicyName: aws.String(name), PolicyDocument: aws.String(doc),
		})
	}
	if err != nil {
		return wrap(err, op, "inline policy "+name, g.Principal)
	}
	return nil
}

func (p *timeboxedProvider) Revoke(ctx context.Context, g access.Grant) error {
	name, err := p.validate(g)
	if err != nil {
		return err
	}
	op := "DeleteUserPolicy"
	if g.Principal.Kind == access.PrincipalRole {
		op = "DeleteRolePolicy"
		_, err = p.iam.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{
			RoleName: aws.String(g.Principal.Name), PolicyName: aws.String(name),
		})
	} else {
		_, err = p.iam.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{
			UserName: aws.String(g.Principal.Name), PolicyName: aws.String(name),
		})
	}
	if err = ignoreNoSuchEntity(err); err != nil {
		return wrap(err, op, "inline policy "+name, g.Principal)
	}
	return nil
}

func (p *timeboxedProvider) Check(ctx context.Context, g access.Grant, want bool) (bool, error) {
	name, err := p.validate(g)
	if err != nil {
		return false, err
	}
	return p.poll(ctx, want, func(ctx context.Context) (bool, error) {
		var err error
		op := "GetUserPolicy"
		if g.Principal.Kind == access.PrincipalRole {
			op = "GetRolePolicy"
			_, err = p.iam.GetRolePolicy(ctx, &iam.GetRolePolicyInput{
				RoleName: aws.String(g.Principal.Name), PolicyName: aws.String(name),
			})
		} else {
			_, err = p.iam.GetUserPolicy(ctx, &iam.GetUserPolicyInput{
				UserName: aws.String(g.Principal.Name), PolicyName: aws.String(name),
			})
		}
		if isNoSuchEntity(err) {
			return false, nil
		}
		if err != nil {
			return false, wrap(err, op, "inline policy "+name, g.Principal)
		}
		return true, nil
	})
}
