// Command hello is the cold-start baseline of the benchmarks: the smallest
// useful aws-lambda-go function, built exactly like the real functions
// (CGO_ENABLED=0 -tags lambda.norpc -trimpath -ldflags "-s -w").
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, ev json.RawMessage) (map[string]any, error) {
		return map[string]any{"hello": "world", "bytes": len(ev)}, nil
	})
}
