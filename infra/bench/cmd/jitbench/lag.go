package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/jitaccess/jit/infra/bench"
	"github.com/jitaccess/jit/internal/access"
	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/dynamo"
)

// revokeLag runs part 5 on the local stack (a separate command, so that the
// rest of the benchmark does not depend on that package building), and
// falls back to invoking the revoke handler in process when it cannot.
func revokeLag(ctx context.Context, root string, w *world, loadN, conc int, logf func(string, ...any)) (*bench.LagResult, []bench.LoadStats, error) {
	if _, err := os.Stat(root + "/infra/local/stack/stack.go"); err == nil {
		out, err := lagOnStack(ctx, root, loadN, conc)
		if err == nil {
			logf("revoke lag: local stack, %d of %d revoked", out.Lag.Revoked, out.Lag.Grants)
			return out.Lag, out.Load, nil
		}
		logf("revoke lag: the local stack run failed (%v); measuring in process instead", err)
		res, ferr := lagInProcess(ctx, w, logf)
		if res != nil {
			res.Notes = append(res.Notes, "The local-stack run failed: "+firstLine(err.Error()))
		}
		return res, nil, ferr
	}
	res, err := lagInProcess(ctx, w, logf)
	if res != nil {
		res.Notes = append(res.Notes, "infra/local/stack is not there; measured in process.")
	}
	return res, nil, err
}

// stackOutput is what jitbench-lag prints.
type stackOutput struct {
	Lag  *bench.LagResult  `json:"lag"`
	Load []bench.LoadStats `json:"load"`
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func lagOnStack(ctx context.Context, root string, loadN, conc int) (*stackOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", "./infra/bench/cmd/jitbench-lag", "-load", strconv.Itoa(loadN), "-c", strconv.Itoa(conc))
	cmd.Dir = root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, tailLines(stderr.String(), 5))
	}
	var res stackOutput
	if err := json.Unmarshal(out, &res); err != nil || res.Lag == nil {
		return nil, fmt.Errorf("read its result: %v", err)
	}
	return &res, nil
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// lagInProcess: 200 auto-approved grants ending at the same instant, their
// revoke schedules read from moto and fired by invoking api.RevokeHandler
// with bounded concurrency.
func lagInProcess(ctx context.Context, w *world, logf func(string, ...any)) (*bench.LagResult, error) {
	const conc = 16
	cat, users := benchCatalog()
	if err := w.reset(ctx, users); err != nil {
		return nil, err
	}
	clk := &clock{}
	start := time.Now().UTC().Truncate(time.Minute)
	clk.Set(start)
	cfg := w.tracked(nil, true)
	intake, err := w.service(config.Intake, cfg, clk.Now, cat, nil)
	if err != nil {
		return nil, err
	}
	revokeSvc, err := w.service(config.Revoke, cfg, clk.Now, cat, nil)
	if err != nil {
		return nil, err
	}
	ids := make([]string, lagUsers)
	if err := parallel(ctx, 8, lagUsers, func(i int) error {
		r, err := intake.Submit(ctx, app.Caller{Identity: fmt.Sprintf("u%03d@example.com", i)}, app.SubmitInput{RoleID: "lag", Duration: time.Hour, Justification: "Maintenance window for everyone"})
		if err == nil && r.Status != access.StatusActive {
			err = fmt.Errorf("request %s is %s (%s)", r.ID, r.Status, r.LastError)
		}
		ids[i] = r.ID
		return err
	}); err != nil {
		return nil, err
	}
	logf("revoke lag: %d grants active", lagUsers)

	sched := scheduler.NewFromConfig(w.raw)
	var names []string
	pages := scheduler.NewListSchedulesPaginator(sched, &scheduler.ListSchedulesInput{GroupName: aws.String(scheduleGroup), NamePrefix: aws.String("revoke-")})
	for pages.HasMorePages() {
		p, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range p.Schedules {
			names = append(names, aws.ToString(s.Name))
		}
	}
	handler := api.RevokeHandler(revokeSvc, quiet)
	clk.Set(start.Add(time.Hour + time.Second))
	res := &bench.LagResult{Method: fmt.Sprintf("in process: every revoke schedule read from moto (GetSchedule) and its input passed to api.RevokeHandler, %d at a time, the schedule deleted after", conc), Grants: lagUsers}
	var mu sync.Mutex
	t0 := time.Now()
	err = parallel(ctx, conc, len(names), func(i int) error {
		out, err := sched.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(names[i]), GroupName: aws.String(scheduleGroup)})
		if err != nil {
			return err
		}
		if err := handler(ctx, json.RawMessage(aws.ToString(out.Target.Input))); err != nil {
			return err
		}
		d := time.Since(t0)
		mu.Lock()
		res.Lags = append(res.Lags, d)
		mu.Unlock()
		_, err = sched.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(names[i]), GroupName: aws.String(scheduleGroup)})
		return err
	})
	res.Wall = time.Since(t0)
	if err != nil {
		return nil, err
	}
	res.Revoked, err = verifyRevoked(ctx, w, ids)
	return res, err
}

// verifyRevoked counts the requests that are EXPIRED and whose user is no
// longer in the lag group.
func verifyRevoked(ctx context.Context, w *world, ids []string) (int, error) {
	store := dynamo.New(dynamodb.NewFromConfig(w.raw), tables)
	ic := iam.NewFromConfig(w.raw)
	n := 0
	var errs []error
	for _, id := range ids {
		r, err := store.Get(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out, err := ic.ListGroupsForUser(ctx, &iam.ListGroupsForUserInput{UserName: aws.String(r.Principal.Name)})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		in := false
		for _, g := range out.Groups {
			in = in || aws.ToString(g.GroupName) == lagGroup
		}
		if !in && r.Status == access.StatusExpired {
			n++
		}
	}
	return n, errors.Join(errs...)
}
