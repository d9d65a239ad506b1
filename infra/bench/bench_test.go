package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/catalog"
	"github.com/jitaccess/jit/internal/dynamo"
)

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3} // unsorted on purpose
	assert.Equal(t, 1.0, Percentile(xs, 0))
	assert.Equal(t, 3.0, Percentile(xs, 50))
	assert.Equal(t, 5.0, Percentile(xs, 100))
	assert.InDelta(t, 4.96, Percentile(xs, 99), 1e-9) // 1 + 0.99*4 = 4.96 -> between 4 and 5
	assert.Equal(t, 2.5, Median([]float64{1, 2, 3, 4}))
	assert.Equal(t, []float64{5, 1, 4, 2, 3}, xs, "the input is not reordered")
	assert.True(t, math.IsNaN(Percentile(nil, 50)))
	assert.Equal(t, 7.0, Percentile([]float64{7}, 99))
	assert.Equal(t, 5.0, Percentile(xs, 250), "p is clamped")
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := Summarize(ds)
	assert.Equal(t, 100, s.N)
	assert.Equal(t, time.Millisecond, s.Min)
	assert.Equal(t, 100*time.Millisecond, s.Max)
	assert.Equal(t, 50500*time.Microsecond, s.P50)
	assert.Equal(t, 99010*time.Microsecond, s.P99)
	assert.Equal(t, 50500*time.Microsecond, s.Mean)
	assert.Equal(t, Summary{}, Summarize(nil))
	assert.Equal(t, 1.23, Ms(1234*time.Microsecond))
	assert.True(t, math.IsNaN(Ratio(1, 0)))
	assert.Equal(t, 2.0, Ratio(4, 2))
}

func TestPrice(t *testing.T) {
	u := Usage{WriteUnits: 40, ReadUnits: 10, SchedulerInvocations: 2, Emails: 5, LambdaInvocations: 4,
		LambdaBilledMs: 1000, LambdaMemoryMB: 128, SecretsCalls: 1}
	c := USEast1.Price(u, true)
	assert.InDelta(t, 40*0.625/1e6+10*0.125/1e6, c.DynamoDB, 1e-15)
	assert.InDelta(t, 2e-6, c.Scheduler, 1e-15)
	assert.InDelta(t, 5*0.10/1000, c.SES, 1e-15)
	assert.InDelta(t, 4*0.2/1e6+0.125*0.0000133334, c.Lambda, 1e-15) // 1 s at 1/8 GB
	assert.InDelta(t, 0.05/1e4, c.SecretsManager, 1e-15)
	assert.InDelta(t, c.DynamoDB+c.Scheduler+c.SES+c.Lambda+c.SecretsManager, c.Total(), 1e-15)
	assert.InDelta(t, 1000*c.Total(), c.Scale(1000).Total(), 1e-12)

	without := USEast1.Price(u, false)
	assert.Zero(t, without.SES)
	assert.InDelta(t, c.Total()-c.SES, without.Total(), 1e-15)

	old := USEast1Before2024.Price(u, true)
	assert.InDelta(t, 2*c.DynamoDB, old.DynamoDB, 1e-15, "DynamoDB on-demand was halved on 2024-11-01")
	assert.Equal(t, c.SES, old.SES)

	assert.Equal(t, 0.125, GBSeconds(1000, 128))
	assert.Equal(t, 13.0, BilledMs(12.01))
	assert.Equal(t, 12.0, BilledMs(12))
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func TestItemSize(t *testing.T) {
	assert.Equal(t, 1, NumberSize("0"))
	assert.Equal(t, 2, NumberSize("7"))
	assert.Equal(t, 2, NumberSize("12"))
	assert.Equal(t, 3, NumberSize("123"))
	assert.Equal(t, 2, NumberSize("1000"), "trailing zeros do not count")
	assert.Equal(t, 3, NumberSize("-12.5"))

	item := map[string]types.AttributeValue{
		"pk":      s("REQ#1"),                                                                        // 2 + 5
		"version": n("12"),                                                                           // 7 + 2
		"ok":      &types.AttributeValueMemberBOOL{Value: true},                                      // 2 + 1
		"holders": &types.AttributeValueMemberSS{Value: []string{"ab", "cde"}},                       // 7 + 5
		"list":    &types.AttributeValueMemberL{Value: []types.AttributeValue{s("x"), s("yz")}},      // 4 + 3 + (1+1) + (1+2)
		"map":     &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k": s("v")}}, // 3 + 3 + 1 + 1 + 1
		"bin":     &types.AttributeValueMemberB{Value: []byte{1, 2, 3}},                              // 3 + 3
		"null":    &types.AttributeValueMemberNULL{Value: true},                                      // 4 + 1
	}
	assert.Equal(t, 7+9+3+12+(4+3+2+3)+(3+3+3)+6+5, ItemSize(item))
	assert.Equal(t, 0, ItemSize(nil))

	assert.Equal(t, 1.0, WriteUnits(0))
	assert.Equal(t, 1.0, WriteUnits(1024))
	assert.Equal(t, 2.0, WriteUnits(1025))
	assert.Equal(t, 1.0, ReadUnits(4096, true))
	assert.Equal(t, 2.0, ReadUnits(4097, true))
	assert.Equal(t, 0.5, ReadUnits(10, false))
	assert.Equal(t, 0.5, ReadUnits(0, false), "a miss still costs the minimum")
}

// requestItem is a state-table request item in the store's layout.
func requestItem(id, status, due string) map[string]types.AttributeValue {
	it := map[string]types.AttributeValue{
		"pk": s("REQ#" + id), "sk": s("REQ"), "requester": s("alice@example.com"),
		"createdKey": s("2026-01-01#" + id), "version": n("1"), "status": s(status),
		"justification": s(strings.Repeat("j", 850)),
	}
	if due != "" {
		it["dueStatus"], it["dueAt"] = s(status), s(due)
	}
	return it
}

func TestTrackerModelsTransactionsAndIndexes(t *testing.T) {
	tr := NewTracker(dynamo.StateTable("state"), dynamo.AuditTable("audit"))
	audit := map[string]types.AttributeValue{"requestId": s("r1"), "seq": n("1"), "hash": s("h")}

	// Create: a new request in byRequester and due, plus its audit record.
	first := requestItem("r1", "PENDING", "2026-01-02")
	cost := tr.dynamo("DynamoDB.TransactWriteItems", &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String("state"), Item: first}},
		{Put: &types.Put{TableName: aws.String("audit"), Item: audit}},
	}}, &dynamodb.TransactWriteItemsOutput{}, nil)
	size := ItemSize(first)
	require.Less(t, size, 1024)
	// 2 × 1 (state) + 2 × 1 (audit) + 1 (byRequester put) + 1 (due put)
	assert.Equal(t, 6.0, cost.Write)
	assert.Equal(t, 2.0, cost.IndexWrite)
	assert.Equal(t, 2, cost.Items)

	// Transition: due key changes (2 writes), byRequester changes (1).
	next := requestItem("r1", "ACTIVE", "2026-01-03")
	next["version"] = n("2")
	cost = tr.dynamo("DynamoDB.TransactWriteItems", &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String("state"), Item: next}},
	}}, &dynamodb.TransactWriteItemsOutput{}, nil)
	assert.Equal(t, 2.0+2+1, cost.Write)

	// Terminal: leaves due (1), stays in byRequester (1).
	done := requestItem("r1", "EXPIRED", "")
	done["version"] = n("3")
	cost = tr.dynamo("DynamoDB.TransactWriteItems", &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String("state"), Item: done}},
	}}, &dynamodb.TransactWriteItemsOutput{}, nil)
	assert.Equal(t, 2.0+1+1, cost.Write)

	// A put that grows the item past 1 KB pays for the larger size.
	big := requestItem("r1", "EXPIRED", "")
	big["lastError"] = s(strings.Repeat("e", 600))
	cost = tr.dynamo("DynamoDB.PutItem", &dynamodb.PutItemInput{TableName: aws.String("state"), Item: big}, &dynamodb.PutItemOutput{}, nil)
	assert.Equal(t, 2.0+2, cost.Write, "2 KB in the table, 2 KB in byRequester")

	// Failed conditions still pay.
	cost = tr.dynamo("DynamoDB.UpdateItem", &dynamodb.UpdateItemInput{TableName: aws.String("state"), Key: map[string]types.AttributeValue{"pk": s("GRANT#k"), "sk": s("GRANT")}},
		nil, &types.ConditionalCheckFailedException{})
	assert.Equal(t, 1.0, cost.Write)

	// Reads: consistent GetItem, an index query summing its items, a miss.
	cost = tr.dynamo("DynamoDB.GetItem", &dynamodb.GetItemInput{TableName: aws.String("state"), ConsistentRead: aws.Bool(true)},
		&dynamodb.GetItemOutput{Item: big}, nil)
	assert.Equal(t, 1.0, cost.Read)
	items := []map[string]types.AttributeValue{}
	for i := range 10 {
		items = append(items, requestItem(fmt.Sprint(i), "ACTIVE", "2026-01-01"))
	}
	cost = tr.dynamo("DynamoDB.Query", &dynamodb.QueryInput{TableName: aws.String("state"), IndexName: aws.String("due")},
		&dynamodb.QueryOutput{Items: items}, nil)
	assert.Equal(t, 1.5, cost.Read, "about 9.5 KB eventually consistent: 3 × 0.5")
	assert.Equal(t, 10, cost.Items)
	assert.Equal(t, 10, cost.Scanned, "no ScannedCount: what was returned")
	cost = tr.dynamo("DynamoDB.GetItem", &dynamodb.GetItemInput{TableName: aws.String("state")}, &dynamodb.GetItemOutput{}, nil)
	assert.Equal(t, 0.5, cost.Read)
	// A filtered query is billed for every item it evaluated, not the ones returned.
	filtered := tr.dynamo("DynamoDB.Query", &dynamodb.QueryInput{TableName: aws.String("state"), IndexName: aws.String("due"), FilterExpression: aws.String("x")},
		&dynamodb.QueryOutput{Items: items[:1], Count: 1, ScannedCount: 40}, nil)
	assert.Equal(t, 1, filtered.Items)
	assert.Equal(t, 40, filtered.Scanned)
	assert.Equal(t, ReadUnits(40*ItemSize(items[0]), false), filtered.Read, "40 items read, 39 filtered out")
	none := tr.dynamo("DynamoDB.Query", &dynamodb.QueryInput{TableName: aws.String("state"), IndexName: aws.String("due")},
		&dynamodb.QueryOutput{ScannedCount: 40}, nil)
	assert.Equal(t, 40, none.Scanned)
	assert.Greater(t, none.Read, 0.5, "none returned: priced as the table's largest items")

	tr.Consumed("Get.GetItem", []types.ConsumedCapacity{{CapacityUnits: aws.Float64(0.5)}, {CapacityUnits: aws.Float64(1)}})
	snap := tr.Snapshot()
	assert.Equal(t, 1.5, snap.ReportedTotal())
	assert.Equal(t, 6.0+5+4, snap.Op("DynamoDB.TransactWriteItems").Write)
	assert.Equal(t, 1.0+1.5+0.5+filtered.Read+none.Read, snap.Total("DynamoDB").Read)
	assert.Equal(t, ItemSize(big), snap.MaxItem["state"])
	tr.Reset()
	assert.Empty(t, tr.Snapshot().Ops)
}

func TestRuntimeAPI(t *testing.T) {
	api := &RuntimeAPI{FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:f"}
	require.NoError(t, api.Start())
	t.Cleanup(func() { _ = api.Close() })
	base := "http://" + api.Addr() + RuntimeAPIVersion
	client := &http.Client{Timeout: 5 * time.Second}

	inv := &Invocation{RequestID: "req-1", Event: []byte(`{"x":1}`), Deadline: time.Minute}
	api.Arm(inv)
	resp, err := client.Get(base + "/runtime/invocation/next")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, `{"x":1}`, string(body))
	assert.Equal(t, "req-1", resp.Header.Get("Lambda-Runtime-Aws-Request-Id"))
	assert.Equal(t, api.FunctionARN, resp.Header.Get("Lambda-Runtime-Invoked-Function-Arn"))
	assert.Contains(t, resp.Header.Get("Lambda-Runtime-Trace-Id"), "Root=1-")
	deadline, err := strconv.ParseInt(resp.Header.Get("Lambda-Runtime-Deadline-Ms"), 10, 64)
	require.NoError(t, err)
	assert.Greater(t, deadline, time.Now().UnixMilli())
	assert.False(t, inv.FirstNext.IsZero())

	// A response for another id is refused; the right one finishes the invocation.
	resp, err = client.Post(base+"/runtime/invocation/other/response", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, err = client.Post(base+"/runtime/invocation/req-1/response", "application/json", strings.NewReader(`"ok"`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.NoError(t, inv.Wait(time.Second, nil))
	assert.Equal(t, "response", inv.Outcome)
	assert.Equal(t, `"ok"`, string(inv.Body))
	assert.False(t, inv.Responded.Before(inv.FirstNext))

	// The next poll is held until the API is re-armed.
	held := make(chan int, 1)
	go func() {
		resp, err := client.Get(base + "/runtime/invocation/next")
		if err == nil {
			resp.Body.Close()
			held <- resp.StatusCode
		}
	}()
	select {
	case <-held:
		t.Fatal("the second poll was answered before a new invocation was armed")
	case <-time.After(100 * time.Millisecond):
	}
	inv2 := &Invocation{RequestID: "req-2", Event: []byte(`{}`)}
	api.Arm(inv2)
	select {
	case code := <-held:
		assert.Equal(t, http.StatusGone, code)
	case <-time.After(2 * time.Second):
		t.Fatal("the held poll was not released")
	}

	// Errors and init errors finish the invocation too.
	resp, err = client.Post(base+"/runtime/init/error", "application/json", strings.NewReader(`{"errorMessage":"boom"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.NoError(t, inv2.Wait(time.Second, nil))
	assert.Equal(t, "init-error", inv2.Outcome)
	assert.True(t, inv2.FirstNext.IsZero())

	inv3 := &Invocation{RequestID: "req-3", Event: []byte(`{}`)}
	api.Arm(inv3)
	assert.ErrorIs(t, inv3.Wait(10*time.Millisecond, nil), ErrTimeout)
	exited := make(chan struct{})
	close(exited)
	assert.Error(t, inv3.Wait(time.Second, exited))
}

func TestTable(t *testing.T) {
	got := Table([]string{"name", ">n"}, [][]string{{"a|b", "1"}, {"c"}})
	assert.Equal(t, "| name | n |\n| --- | --: |\n| a\\|b | 1 |\n| c |  |\n", got)
	assert.Equal(t, "n/a", F(math.NaN(), 2))
	assert.Equal(t, "1.50", F(1.5, 2))
	assert.Equal(t, "$0", Dollars(0))
	assert.Equal(t, "$0.000123", Dollars(0.000123))
	assert.Equal(t, "$0.4248", Dollars(0.42481))
	assert.Equal(t, "$12.30", Dollars(12.3))
	assert.Equal(t, "1.5 MiB", MB(3<<19))
}

func TestCatalogYAMLParses(t *testing.T) {
	src, users := CatalogYAML()
	c, err := catalog.Parse("bench.yaml", []byte(src))
	require.NoError(t, err)
	assert.Len(t, users, 5+LagUsers)
	for _, id := range []string{"one-approver", "quorum", "auto", "glass", "lag"} {
		_, ok := c.Role(id)
		assert.True(t, ok, id)
	}
	assert.Len(t, c.RolesFor("u199@example.com"), 1)
}

func TestLoad(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("i") == "3" {
			w.WriteHeader(http.StatusTeapot)
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	st, err := Load(context.Background(), srv.Client(), "get", 10, 3, func(i int) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/?i="+strconv.Itoa(i), nil)
		return req
	})
	require.NoError(t, err)
	assert.Equal(t, map[int]int{200: 9, 418: 1}, st.Status)
	assert.Equal(t, 10, st.Lat.N)
	assert.Greater(t, st.RPS(), 0.0)
	raw, err := json.Marshal(st)
	require.NoError(t, err)
	assert.Contains(t, string(raw), `"concurrency":3`)
}
