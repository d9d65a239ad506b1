// Command intake serves the authenticated API: catalog, requests, decisions,
// cancel, early revoke and audit.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/wire"
)

func main() {
	svc, c, log := wire.FromEnv(config.Intake)
	lambda.Start(api.Lambda(api.Intake(svc, api.Options{IdentityClaim: c.IdentityClaim, Log: log})))
}
