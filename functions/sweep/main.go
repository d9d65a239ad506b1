// Command sweep is the safety net run every five minutes: overdue revokes,
// missed activations, approval time-outs and drift checks.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/wire"
)

func main() {
	svc, _, _ := wire.FromEnv(config.Sweep)
	lambda.Start(api.SweepHandler(svc))
}
