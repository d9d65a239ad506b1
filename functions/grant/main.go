// Command grant activates an approved request when its start-time schedule fires.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/jitaccess/jit/internal/api"
	"github.com/jitaccess/jit/internal/config"
	"github.com/jitaccess/jit/internal/wire"
)

func main() {
	svc, _, log := wire.FromEnv(config.Grant)
	lambda.Start(api.GrantHandler(svc, log))
}
