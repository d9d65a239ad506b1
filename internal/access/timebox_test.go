package access

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTimeboxPolicy(t *testing.T) {
	end := time.Date(2030, 5, 6, 7, 8, 9, 500, time.FixedZone("CEST", 2*60*60))
	const until = `"DateLessThan":{"aws:CurrentTime":"2030-05-06T05:08:09Z"}`

	tests := []struct {
		name    string
		give    string
		want    string
		wantErr string
	}{
		{
			name: "every statement carries the condition",
			give: `{"Version":"2012-10-17","Statement":[
				{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"},
				{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}`,
			want: `{"Statement":[
				{"Action":"s3:ListBucket","Condition":{` + until + `},"Effect":"Allow","Resource":"arn:aws:s3:::b"},
				{"Action":"s3:DeleteObject","Condition":{` + until + `},"Effect":"Deny","Resource":"*"}],
				"Version":"2012-10-17"}`,
		},
		{
			name: "Statement object becomes an array",
			give: `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`,
			want: `{"Statement":[{"Action":"*","Condition":{` + until + `},"Effect":"Allow","Resource":"*"}]}`,
		},
		{
			name: "existing conditions are kept",
			give: `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
				"Bool":{"aws:SecureTransport":"true"},
				"DateLessThan":{"aws:TokenIssueTime":"2030-01-01T00:00:00Z"}}}]}`,
			want: `{"Statement":[{"Action":"*","Effect":"Allow","Resource":"*","Condition":{
				"Bool":{"aws:SecureTransport":"true"},
				"DateLessThan":{"aws:TokenIssueTime":"2030-01-01T00:00:00Z","aws:CurrentTime":"2030-05-06T05:08:09Z"}}}]}`,
		},
		{
			name: "an earlier existing end wins",
			give: `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
				"DateLessThan":{"aws:currenttime":"2029-01-01T00:00:00+01:00"}}}]}`,
			want: `{"Statement":[{"Action":"*","Effect":"Allow","Resource":"*","Condition":{
				"DateLessThan":{"aws:CurrentTime":"2028-12-31T23:00:00Z"}}}]}`,
		},
		{
			name: "a later existing end is replaced",
			give: `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
				"DateLessThan":{"aws:CurrentTime":["2031-01-01","2032-01-01"]}}}]}`,
			want: `{"Statement":[{"Action":"*","Effect":"Allow","Resource":"*","Condition":{` + until + `}}]}`,
		},
		{
			name: "existing end in epoch seconds",
			give: `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{
				"DateLessThan":{"aws:CurrentTime":1700000000}}}]}`,
			want: `{"Statement":[{"Action":"*","Effect":"Allow","Resource":"*","Condition":{
				"DateLessThan":{"aws:CurrentTime":"2023-11-14T22:13:20Z"}}}]}`,
		},
		{
			name: "numbers and special characters kept exactly",
			give: `{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b/<&>","Condition":{
				"NumericLessThan":{"aws:MultiFactorAuthAge":3600.0}}}]}`,
			want: `{"Statement":[{"Action":"*","Effect":"Allow","Resource":"arn:aws:s3:::b/<&>","Condition":{
				"NumericLessThan":{"aws:MultiFactorAuthAge":3600.0},` + until + `}}]}`,
		},
		{name: "bad JSON", give: `{"Statement":`, wantErr: "not a JSON object"},
		{name: "not an object", give: `[{"Effect":"Allow"}]`, wantErr: "not a JSON object"},
		{name: "null", give: `null`, wantErr: "not a JSON object"},
		{name: "trailing data", give: `{"Statement":{}} {}`, wantErr: "data after its end"},
		{name: "no Statement", give: `{"Version":"2012-10-17"}`, wantErr: "no Statement"},
		{name: "empty Statement", give: `{"Statement":[]}`, wantErr: "no statements"},
		{name: "Statement of the wrong type", give: `{"Statement":"Allow"}`, wantErr: "object or an array"},
		{name: "statement not an object", give: `{"Statement":["Allow"]}`, wantErr: "statement 0 is not an object"},
		{name: "Condition not an object", give: `{"Statement":[{"Condition":[]}]}`, wantErr: "Condition is not an object"},
		{name: "DateLessThan not an object", give: `{"Statement":[{"Condition":{"DateLessThan":"x"}}]}`, wantErr: "DateLessThan is not an object"},
		{
			name:    "unreadable existing end",
			give:    `{"Statement":[{"Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}]}`,
			wantErr: `cannot read time "tomorrow"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TimeboxPolicy(tt.give, end)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, KindInvalid, KindOf(err))
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, got)
			assert.NotContains(t, got, "\n", "compact")
			assert.Equal(t, len(strings.Fields(got)), 1, "no whitespace outside strings")
		})
	}
}

func TestTimeboxPolicyIsIdempotent(t *testing.T) {
	end := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	once, err := TimeboxPolicy(`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, end)
	require.NoError(t, err)
	twice, err := TimeboxPolicy(once, end.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, once, twice, "the earlier end is kept")
}

func TestTimeboxPolicyNeedsEnd(t *testing.T) {
	_, err := TimeboxPolicy(`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, time.Time{})
	assert.Equal(t, KindInvalid, KindOf(err))
}

func TestPolicySize(t *testing.T) {
	tests := []struct {
		name string
		give string
		want int
	}{
		{name: "empty", give: "", want: 0},
		{name: "compact", give: `{"a":"b"}`, want: 9},
		{name: "whitespace not counted", give: "{\n  \"a\" : \"b\"\t}\r\n", want: 9},
		{name: "characters, not bytes", give: `{"a":"é"}`, want: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, PolicySize(tt.give))
		})
	}
}
