package iamgrant

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/jitaccess/jit/internal/access"
)

// groupProvider grants iam-group: membership of an IAM user in a group.
type groupProvider struct {
	iam IAMAPI
	checker
}

func (p *groupProvider) validate(g access.Grant) error {
	if err := checkPrincipal(g.Principal, access.PrincipalUser); err != nil {
		return err
	}
	if g.Target.Group == "" {
		return access.FieldErrorf("target.group", "iam-group needs a group name")
	}
	return nil
}

func (p *groupProvider) Grant(ctx context.Context, g access.Grant) error {
	if err := p.validate(g); err != nil {
		return err
	}
	// Adding a member twice is a no-op in IAM.
	_, err := p.iam.AddUserToGroup(ctx, &iam.AddUserToGroupInput{
		GroupName: aws.String(g.Target.Group),
		UserName:  aws.String(g.Principal.Name),
	})
	if err != nil {
		return wrap(err, "AddUserToGroup", "group "+g.Target.Group, g.Principal)
	}
	return nil
}

func (p *groupProvider) Revoke(ctx context.Context, g access.Grant) error {
	if err := p.validate(g); err != nil {
		return err
	}
	_, err := p.iam.RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{
		GroupName: aws.String(g.Target.Group),
		UserName:  aws.String(g.Principal.Name),
	})
	if err = ignoreNoSuchEntity(err); err != nil {
		return wrap(err, "RemoveUserFromGroup", "group "+g.Target.Group, g.Principal)
	}
	return nil
}

func (p *groupProvider) Check(ctx context.Context, g access.Grant, want bool) (bool, error) {
	if err := p.validate(g); err != nil {
		return false, err
	}
	return p.poll(ctx, want, func(ctx context.Context) (bool, error) {
		// A user's groups are few; a group's members may be many.
		pages := iam.NewListGroupsForUserPaginator(p.iam, &iam.ListGroupsForUserInput{UserName: aws.String(g.Principal.Name)})
		for pages.HasMorePages() {
			out, err := pages.NextPage(ctx)
			if isNoSuchEntity(err) {
				return false, nil // no user, no membership
			}
			if err != nil {
				return false, wrap(err, "ListGroupsForUser", "group "+g.Target.Group, g.Principal)
			}
			for _, grp := range out.Groups {
				// IAM names are unique regardless of case.
				if strings.EqualFold(aws.ToString(grp.GroupName), g.Target.Group) {
					return true, nil
				}
			}
		}
		return false, nil
	})
}
