package schedule_test

import (
	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/schedule"
)

var _ app.Scheduler = (*schedule.Scheduler)(nil)
