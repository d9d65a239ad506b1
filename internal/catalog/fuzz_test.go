package catalog

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jitaccess/jit/internal/access"
)

// FuzzParse checks that no input makes Parse panic or hang, that failures
// always come as located problems, and that what it accepts is usable.
// The checked-in corpus is in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(evalCatalog))
	f.Add([]byte(header + role))
	f.Add([]byte(header + bigPolicy("[erin@example.com]")))
	f.Add([]byte(header + timeboxed("{Effect: Allow, Action: '*', Resource: '*', Condition: {DateLessThan: {'aws:CurrentTime': '2030-01-01T00:00:00Z'}}}")))
	f.Add([]byte("version: 1\nroles:\n  - &a\n    id: x\n  - <<: [*a, *b]\n    id: y\n"))
	f.Add([]byte("version: 1\nx: &a [*a, *a]\nroles: *a\n"))
	f.Add([]byte("version: 1\nroles: [\n"))
	f.Add([]byte("---\n...\n---\n"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if c != nil {
				t.Fatal("catalog returned with an error")
			}
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Problems) == 0 {
				t.Fatalf("error is not a located problem list: %v", err)
			}
			for _, p := range verr.Problems {
				if p.File != "fuzz.yaml" || p.Line < 1 || p.Column < 1 || p.Message == "" {
					t.Fatalf("problem without a place or message: %#v", p)
				}
			}
			return
		}
		if len(c.Roles) == 0 {
			t.Fatal("catalog accepted without roles")
		}
		for _, r := range c.Roles {
			if got, ok := c.Role(r.ID); !ok || got.ID != r.ID {
				t.Fatalf("role %q not found by id", r.ID)
			}
			if r.DefaultDuration <= 0 || r.DefaultDuration > r.MaxDuration || r.MaxDuration > maxDuration {
				t.Fatalf("role %q accepted with durations %v/%v", r.ID, r.DefaultDuration, r.MaxDuration)
			}
			if r.Provider == access.ProviderIAMTimeboxedPolicy {
				doc, err := access.TimeboxPolicy(r.Target.PolicyDocument, time.Now().Add(time.Hour))
				if err != nil || access.PolicySize(doc) > access.MaxRoleInlinePolicySize {
					t.Fatalf("role %q accepted with an unusable policy: %v", r.ID, err)
				}
			}
			for _, id := range c.Members(r.Requesters) {
				d, err := c.Evaluate(Input{Identity: id, RoleID: r.ID, Ticket: "T-1", Justification: "a reason that is long enough"})
				if err != nil {
					if access.KindOf(err) == access.KindInternal {
						t.Fatalf("internal error evaluating %q for %s: %v", r.ID, id, err)
					}
					continue
				}
				for _, a := range d.Approvers {
					if a == id {
						t.Fatalf("requester %s approves their own request for %q", id, r.ID)
					}
				}
			}
		}
	})
}
