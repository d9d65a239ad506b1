// Package email tells people about requests by email through SES v2. Every
// message has an HTML and a plain-text body; user-supplied text is escaped
// in the HTML by html/template.
package email

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/jitaccess/jit/internal/access"
)

// SESAPI is the part of the SES v2 client the sender uses.
type SESAPI interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, optFns ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

// Sender sends notices by email.
type Sender struct {
	client           SESAPI
	from             string
	baseURL          string
	configurationSet string
}

// Option configures a Sender.
type Option func(*Sender)

// WithConfigurationSet sends through an SES configuration set, for bounce
// and delivery tracking.
func WithConfigurationSet(name string) Option {
	return func(s *Sender) { s.configurationSet = name }
}

// New returns a Sender mailing from the verified identity from. baseURL is
// the portal's origin for links to requests; empty leaves them out.
func New(client SESAPI, from, baseURL string, opts ...Option) *Sender {
	s := &Sender{client: client, from: from, baseURL: baseURL}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Notify renders n and sends it as one email per recipient, so that nobody
// sees who else was told and a personal link reaches only its owner. It
// tries every recipient and reports all failures; retrying throttled calls
// is left to the SDK's retryer.
func (s *Sender) Notify(ctx context.Context, n access.Notice) error {
	if len(n.To) == 0 {
		return nil
	}
	msg, err := Render(n, s.baseURL)
	if err != nil {
		return err
	}
	var errs []error
	for _, to := range msg.To {
		if err := s.send(ctx, to, msg); err != nil {
			errs = append(errs, fmt.Errorf("to %s: %w", to, err))
		}
	}
	if len(errs) > 0 {
		return access.Wrap(access.KindInternal, errors.Join(errs...),
			fmt.Sprintf("send %s email for request %s (%d of %d failed)", n.Kind, n.Request.ID, len(errs), len(msg.To)))
	}
	return nil
}

func (s *Sender) send(ctx context.Context, to string, msg Message) error {
	in := &sesv2.SendEmailInput{
		FromEmailAddress: aws.String(s.from),
		Destination:      &types.Destination{ToAddresses: []string{to}},
		Content: &types.EmailContent{Simple: &types.Message{
			Subject: utf8(msg.Subject),
			Body:    &types.Body{Html: utf8(msg.HTML), Text: utf8(msg.Text)},
		}},
	}
	if s.configurationSet != "" {
		in.ConfigurationSetName = aws.String(s.configurationSet)
	}
	_, err := s.client.SendEmail(ctx, in)
	return err
}

func utf8(s string) *types.Content {
	return &types.Content{Data: aws.String(s), Charset: aws.String("UTF-8")}
}
