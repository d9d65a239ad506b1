package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/catalog"
)

// AccountID is moto's account: customer-managed policy ARNs must name it to exist locally.
const AccountID = "123456789012"

// createSender verifies the sender address in SES, as the template's identity does.
func createSender(ctx context.Context, client *sesv2.Client, sender string) error {
	_, err := client.CreateEmailIdentity(ctx, &sesv2.CreateEmailIdentityInput{EmailIdentity: aws.String(sender)})
	if err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		return fmt.Errorf("ses: create identity %s: %w", sender, err)
	}
	return nil
}

// createSigningSecret stores a random 64-character key for the approval
// links and returns the secret's ARN.
func createSigningSecret(ctx context.Context, client *secretsmanager.Client, name string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	out, err := client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String(name),
		Description:  aws.String("HMAC key that signs approval links (local stack)"),
		SecretString: aws.String(hex.EncodeToString(b)),
	})
	if err != nil {
		return "", fmt.Errorf("secretsmanager: create secret %s: %w", name, err)
	}
	return aws.ToString(out.ARN), nil
}

// DemoIAM says what createDemoIAM made in moto.
type DemoIAM struct {
	Users, Roles, Groups []string
	// ManagedPolicies are the AWS-managed policies the catalog names, found in moto.
	ManagedPolicies []string
	// CustomerPolicies are the customer-managed policies created for the catalog.
	CustomerPolicies []string
	// Warnings are roles that cannot work locally, one line each.
	Warnings []string
}

func (d DemoIAM) String() string {
	return fmt.Sprintf("%s, %s, %s; policies: %d AWS-managed found, %d customer-managed created",
		plural(len(d.Users), "user"), plural(len(d.Roles), "role"), plural(len(d.Groups), "group"),
		len(d.ManagedPolicies), len(d.CustomerPolicies))
}

// demoPolicy is the document of every customer-managed policy made for the
// catalog: its content does not matter locally, only that it can be attached.
const demoPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"LocalDemo","Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}`

// assumeRolePolicy lets the account assume the demo roles.
const assumeRolePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + AccountID + `:root"},"Action":"sts:AssumeRole"}]}`

// usesAWSManagedPolicies reports whether any role names an AWS-managed policy.
func usesAWSManagedPolicies(c *catalog.Catalog) bool {
	for _, r := range c.Roles {
		if r.Provider == access.ProviderIAMPolicy && strings.HasPrefix(r.Target.PolicyARN, "arn:aws:iam::aws:policy/") {
			return true
		}
	}
	return false
}

// createDemoIAM makes every IAM principal the catalog maps identities to,
// every group iam-group roles name and every customer-managed policy
// iam-policy roles name, and checks that the AWS-managed ones exist, so that
// every provider can be tried.
func createDemoIAM(ctx context.Context, client *iam.Client, c *catalog.Catalog) (DemoIAM, error) {
	var d DemoIAM
	for _, id := range slices.Sorted(maps.Keys(c.Principals)) {
		p := c.Principals[id]
		switch p.Kind {
		case access.PrincipalUser:
			if slices.Contains(d.Users, p.Name) {
				continue
			}
			_, err := client.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(p.Name),
				Tags: []iamtypes.Tag{{Key: aws.String("jit-identity"), Value: aws.String(id)}}})
			if err != nil && !isEntityExists(err) {
				return d, fmt.Errorf("iam: create user %s for %s: %w", p.Name, id, err)
			}
			d.Users = append(d.Users, p.Name)
		case access.PrincipalRole:
			if slices.Contains(d.Roles, p.Name) {
				continue
			}
			_, err := client.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(p.Name),
				AssumeRolePolicyDocument: aws.String(assumeRolePolicy),
				Tags:                     []iamtypes.Tag{{Key: aws.String("jit-identity"), Value: aws.String(id)}}})
			if err != nil && !isEntityExists(err) {
				return d, fmt.Errorf("iam: create role %s for %s: %w", p.Name, id, err)
			}
			d.Roles = append(d.Roles, p.Name)
		}
	}
	for _, r := range c.Roles {
		switch r.Provider {
		case access.ProviderIAMGroup:
			if slices.Contains(d.Groups, r.Target.Group) {
				continue
			}
			if _, err := client.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String(r.Target.Group)}); err != nil && !isEntityExists(err) {
				return d, fmt.Errorf("iam: create group %s for role %s: %w", r.Target.Group, r.ID, err)
			}
			d.Groups = append(d.Groups, r.Target.Group)
		case access.ProviderIAMPolicy:
			arn := r.Target.PolicyARN
			if slices.Contains(d.ManagedPolicies, arn) || slices.Contains(d.CustomerPolicies, arn) {
				continue
			}
			if err := d.policy(ctx, client, r.ID, arn); err != nil {
				return d, err
			}
		}
	}
	return d, nil
}

// policy makes sure the policy arn can be attached locally.
func (d *DemoIAM) policy(ctx context.Context, client *iam.Client, roleID, arn string) error {
	parts := strings.SplitN(arn, ":", 6) // arn:aws:iam::<account>:policy/<path/><name>
	if len(parts) != 6 || !strings.HasPrefix(parts[5], "policy/") {
		d.Warnings = append(d.Warnings, fmt.Sprintf("role %s: %s is not a policy ARN; its requests will fail", roleID, arn))
		return nil
	}
	account, rest := parts[4], strings.TrimPrefix(parts[5], "policy/")
	switch account {
	case "aws":
		if _, err := client.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)}); err != nil {
			if isNoSuchEntity(err) {
				d.Warnings = append(d.Warnings, fmt.Sprintf("role %s: AWS-managed policy %s does not exist (in moto's copy of the AWS list); its requests will fail", roleID, arn))
				return nil
			}
			return fmt.Errorf("iam: get policy %s for role %s: %w", arn, roleID, err)
		}
		d.ManagedPolicies = append(d.ManagedPolicies, arn)
	case AccountID:
		path, name := "/", rest
		if i := strings.LastIndex(rest, "/"); i >= 0 {
			path, name = "/"+rest[:i+1], rest[i+1:]
		}
		_, err := client.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String(name), Path: aws.String(path),
			PolicyDocument: aws.String(demoPolicy), Description: aws.String("local demo policy for role " + roleID)})
		if err != nil && !isEntityExists(err) {
			return fmt.Errorf("iam: create policy %s for role %s: %w", arn, roleID, err)
		}
		d.CustomerPolicies = append(d.CustomerPolicies, arn)
	default:
		d.Warnings = append(d.Warnings, fmt.Sprintf("role %s: %s is in account %s, but the local account is %s; its requests will fail", roleID, arn, account, AccountID))
	}
	return nil
}

func isEntityExists(err error) bool {
	var e *iamtypes.EntityAlreadyExistsException
	return errors.As(err, &e)
}

func isNoSuchEntity(err error) bool {
	var e *iamtypes.NoSuchEntityException
	return errors.As(err, &e)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
