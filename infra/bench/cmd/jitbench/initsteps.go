package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/wire"
)

// initStep is the in-process (warm) cost of one step of wire.FromEnv.
type initStep struct {
	Name   string
	Median time.Duration
}

// initSteps times the steps every function's main runs before
// lambda.Start, in this (already warm) process: a lower bound of what they
// cost in a cold one.
func initSteps(ctx context.Context, root string, w *world, reps int) ([]initStep, error) {
	catPath := filepath.Join(root, "infra", "catalog.example.yaml")
	env := w.conf.Env()
	env["CATALOG_FILE"] = catPath
	getenv := func(k string) string { return env[k] }
	// The environment a Lambda sees: no custom CA bundle (loading one is
	// most of LoadDefaultConfig's time where it is set, as on some
	// development machines), credentials and region from variables.
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CA_BUNDLE": "", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull} {
		old, had := os.LookupEnv(k)
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	conf, err := config.Load(config.Intake, getenv)
	if err != nil {
		return nil, err
	}
	cat, err := catalog.Load(catPath)
	if err != nil {
		return nil, err
	}
	cfg, err := wire.AWSConfig(ctx, conf)
	if err != nil {
		return nil, err
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"config.Load", func() error { _, err := config.Load(config.Intake, getenv); return err }},
		{"wire.AWSConfig (from the Lambda environment)", func() error { _, err := wire.AWSConfig(ctx, conf); return err }},
		{"catalog.Load (infra/catalog.example.yaml)", func() error { _, err := catalog.Load(catPath); return err }},
		{"wire.Service, catalog given (five SDK clients, adapters)", func() error {
			_, err := wire.Service(config.Intake, conf, cfg, wire.Options{Catalog: cat, Log: quiet, Metrics: noMetrics{}})
			return err
		}},
		{"wire.Service, catalog read from CATALOG_FILE", func() error {
			_, err := wire.Service(config.Intake, conf, cfg, wire.Options{Log: quiet, Metrics: noMetrics{}})
			return err
		}},
	}
	var out []initStep
	for _, s := range steps {
		ds := make([]float64, 0, reps)
		for range reps {
			t0 := time.Now()
			if err := s.fn(); err != nil {
				return nil, err
			}
			ds = append(ds, float64(time.Since(t0)))
		}
		out = append(out, initStep{Name: s.name, Median: time.Duration(median(ds))})
	}
	return out, nil
}
