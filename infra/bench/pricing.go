package bench

import "math"

// Prices is an on-demand price table, in US dollars.
type Prices struct {
	// Source says where and when the figures were taken.
	Source string
	// DynamoDB on-demand request units.
	DynamoWritePerMillion float64
	DynamoReadPerMillion  float64
	// EventBridge Scheduler invocations (free tier ignored).
	SchedulerPerMillion float64
	// SES outbound email.
	SESPerThousand float64
	// Lambda requests and duration (GB-seconds, for the architecture used).
	LambdaRequestsPerMillion float64
	LambdaPerGBSecond        float64
	// Secrets Manager API calls.
	SecretsPer10k float64
}

// USEast1 is the table the report prices with: us-east-1, on-demand, as
// published in November 2024 and still current when this was written
// (DynamoDB on-demand throughput was halved on 2024-11-01, from $1.25 and
// $0.25 per million). Lambda duration is the arm64 price, since the
// functions are deployed on arm64. IAM is free; Scheduler API calls
// (create, delete) are free, only invocations are billed.
var USEast1 = Prices{
	Source:                   "AWS public price pages, us-east-1, on-demand; DynamoDB after the 2024-11-01 on-demand reduction",
	DynamoWritePerMillion:    0.625,
	DynamoReadPerMillion:     0.125,
	SchedulerPerMillion:      1.00,
	SESPerThousand:           0.10,
	LambdaRequestsPerMillion: 0.20,
	LambdaPerGBSecond:        0.0000133334,
	SecretsPer10k:            0.05,
}

// USEast1Before2024 is the same table with DynamoDB's prices before the
// 2024-11-01 reduction (the figures the issue quoted), for comparison.
var USEast1Before2024 = func() Prices {
	p := USEast1
	p.Source = "as USEast1, with DynamoDB on-demand before 2024-11-01"
	p.DynamoWritePerMillion, p.DynamoReadPerMillion = 1.25, 0.25
	return p
}()

// Usage is what a unit of work (one lifecycle) consumes.
type Usage struct {
	WriteUnits, ReadUnits float64
	SchedulerInvocations  int
	Emails                int
	LambdaInvocations     int
	// LambdaBilledMs is the sum over invocations of each one's duration,
	// rounded up to a whole millisecond (Lambda bills per ms).
	LambdaBilledMs float64
	LambdaMemoryMB int
	SecretsCalls   int
}

// Cost is a priced usage, by service.
type Cost struct {
	DynamoDB, Scheduler, SES, Lambda, SecretsManager float64
}

// Total is the sum over services.
func (c Cost) Total() float64 {
	return c.DynamoDB + c.Scheduler + c.SES + c.Lambda + c.SecretsManager
}

// Scale multiplies every figure by n (e.g. per 1,000 lifecycles).
func (c Cost) Scale(n float64) Cost {
	return Cost{c.DynamoDB * n, c.Scheduler * n, c.SES * n, c.Lambda * n, c.SecretsManager * n}
}

// Price prices u; withEmail false leaves SES out (email off or counted elsewhere).
func (p Prices) Price(u Usage, withEmail bool) Cost {
	c := Cost{
		DynamoDB:       u.WriteUnits/1e6*p.DynamoWritePerMillion + u.ReadUnits/1e6*p.DynamoReadPerMillion,
		Scheduler:      float64(u.SchedulerInvocations) / 1e6 * p.SchedulerPerMillion,
		Lambda:         float64(u.LambdaInvocations)/1e6*p.LambdaRequestsPerMillion + GBSeconds(u.LambdaBilledMs, u.LambdaMemoryMB)*p.LambdaPerGBSecond,
		SecretsManager: float64(u.SecretsCalls) / 1e4 * p.SecretsPer10k,
	}
	if withEmail {
		c.SES = float64(u.Emails) / 1e3 * p.SESPerThousand
	}
	return c
}

// GBSeconds converts billed milliseconds at a memory size to GB-seconds.
func GBSeconds(ms float64, memoryMB int) float64 {
	return ms / 1000 * float64(memoryMB) / 1024
}

// BilledMs is one invocation's billed duration: rounded up to the next ms.
func BilledMs(ms float64) float64 { return math.Ceil(ms) }
