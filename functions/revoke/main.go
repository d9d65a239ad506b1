// Command revoke ends access when its end-time schedule fires or when a
// work-finished event names its ticket or request.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/wire"
)

func main() {
	svc, _, log := wire.FromEnv(config.Revoke)
	lambda.Start(api.RevokeHandler(svc, log))
}
