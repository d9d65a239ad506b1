// Command approve serves the public email-link approval pages.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/wire"
)

func main() {
	svc, _, log := wire.FromEnv(config.Approve)
	lambda.Start(api.Lambda(api.Approvals(svc, api.Options{Log: log})))
}
