package main

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
)

// Only the pure helpers: the benchmark itself runs in `make bench`.

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkFloorJSON-2             	   40731	     31111 ns/op	    7266 B/op	     102 allocs/op
BenchmarkIntakeApprove-2         	   10000	   2255275 ns/op	  638960 B/op	     206 allocs/op
BenchmarkNoMem   	  100	  12.5 ns/op
PASS`
	got := parseGoBench(out)
	assert.Equal(t, []goBench{
		{Name: "FloorJSON", N: 40731, NsPerOp: 31111, BPerOp: 7266, AllocsOp: 102},
		{Name: "IntakeApprove", N: 10000, NsPerOp: 2255275, BPerOp: 638960, AllocsOp: 206},
		{Name: "NoMem", N: 100, NsPerOp: 12.5},
	}, got)
}

func TestParseInitTrace(t *testing.T) {
	pkgs, total := parseInitTrace(`init internal/bytealg @0.008 ms, 0.004 ms clock, 0 bytes, 0 allocs
something else
init github.com/aws/x @3.6 ms, 0.83 ms clock, 586696 bytes, 3151 allocs
init example.com/y @4 ms, 0.1 ms clock, 10 bytes, 1 allocs
`)
	assert.Equal(t, []pkgInit{{"github.com/aws/x", 830 * time.Microsecond}, {"example.com/y", 100 * time.Microsecond}, {"internal/bytealg", 4 * time.Microsecond}}, pkgs)
	assert.Equal(t, 934*time.Microsecond, total)
}

func TestIsDriftQuery(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	q := func(v string) *dynamodb.QueryInput {
		return &dynamodb.QueryInput{ExpressionAttributeValues: map[string]types.AttributeValue{
			":0": &types.AttributeValueMemberS{Value: "ACTIVE"}, ":1": &types.AttributeValueMemberS{Value: v}}}
	}
	assert.False(t, isDriftQuery(q("2026-12-03T10:00:00.000000000Z"), now))
	assert.True(t, isDriftQuery(q("2126-11-09T10:00:00.000000000Z"), now))
	assert.False(t, isDriftQuery(&dynamodb.QueryInput{TableName: aws.String("t")}, now))
}

func TestBenchCatalog(t *testing.T) {
	cat, users := benchCatalog()
	assert.Contains(t, users, "u000")
	_, ok := cat.Role("lag")
	assert.True(t, ok)
}

func TestDueQueryProblem(t *testing.T) {
	good := &dynamodb.QueryInput{
		KeyConditionExpression:   aws.String("(#0 = :0) AND (#1 <= :1)"),
		ExpressionAttributeNames: map[string]string{"#0": "dueStatus", "#1": "dueAt"},
	}
	assert.Empty(t, dueQueryProblem(good))
	noRange := &dynamodb.QueryInput{KeyConditionExpression: aws.String("#0 = :0"), ExpressionAttributeNames: map[string]string{"#0": "dueStatus"}}
	assert.Contains(t, dueQueryProblem(noRange), "without a dueAt key condition")
	filtered := *good
	filtered.FilterExpression = aws.String("#2 = :2")
	assert.Contains(t, dueQueryProblem(&filtered), "FilterExpression")
}

func TestRegexCost(t *testing.T) {
	rc, err := measureRegexCost("../../../..", 2)
	if err != nil {
		t.Fatal(err)
	}
	assert.NotEmpty(t, rc.Patterns, "the packages compile patterns at init")
	assert.Positive(t, rc.Total)
	assert.Positive(t, rc.Bounded)
	r := &report{Regex: rc}
	if len(rc.Bounds) > 0 {
		assert.Contains(t, r.regexFinding(), "bounded repetitions")
	}
}

func TestGroupThousands(t *testing.T) {
	assert.Equal(t, "8,640", groupThousands(8640))
	assert.Equal(t, "1,000,000", groupThousands(1000000))
	assert.Equal(t, "999", groupThousands(999))
}
