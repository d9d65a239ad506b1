package wire

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/jitaccess/jit/internal/app"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/logging"
)

// FromEnv builds function fn from its environment: the few lines every
// functions/<name>/main.go shares. It exits the process on a bad
// configuration, since a Lambda cannot run without one.
func FromEnv(fn string) (*app.Service, config.Config, *slog.Logger) {
	log := logging.New(os.Stdout, fn)
	slog.SetDefault(log)
	c, err := config.Load(fn, os.Getenv)
	if err == nil {
		var svc *app.Service
		cfg, err2 := AWSConfig(context.Background(), c)
		if err = err2; err == nil {
			if svc, err = Service(fn, c, cfg, Options{Log: log}); err == nil {
				return svc, c, log
			}
		}
	}
	log.Error("startup failed", "error", err.Error())
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
	return nil, c, log
}
