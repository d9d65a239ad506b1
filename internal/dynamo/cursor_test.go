package dynamo

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/jitaccess/jit/internal/access"
)

func sv(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func TestCursorRoundTrip(t *testing.T) {
	key := item{AttrPK: sv("REQ#1"), AttrSK: sv("REQ"), AttrRequester: sv("alice"), AttrCreatedKey: sv("2031#1")}
	c, err := encodeCursor(key)
	require.NoError(t, err)
	got, err := decodeCursor(c, byRequester, "alice")
	require.NoError(t, err)
	require.Equal(t, key, got)

	empty, err := encodeCursor(nil)
	require.NoError(t, err)
	require.Empty(t, empty)
	none, err := decodeCursor("", byRequester, "alice")
	require.NoError(t, err)
	require.Nil(t, none)

	_, err = encodeCursor(item{AttrPK: &types.AttributeValueMemberN{Value: "1"}})
	require.Error(t, err)
}

func TestDecodeCursorRejects(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	valid := enc(`{"pk":"REQ#1","sk":"REQ","requester":"alice","createdKey":"k"}`)
	tests := []struct {
		name   string
		give   string
		idx    index
		hash   string
		wantOK bool
	}{
		{"valid", valid, byRequester, "alice", true},
		{"another requester's cursor", valid, byRequester, "bob", false},
		{"another index's cursor", valid, byDue, "alice", false},
		{"not base64", "%%%", byRequester, "alice", false},
		{"padded base64", base64.URLEncoding.EncodeToString([]byte(`{"a":"b"}`)), byRequester, "alice", false},
		{"not JSON", enc("nope"), byRequester, "alice", false},
		{"not a string map", enc(`{"pk":1,"sk":"REQ","requester":"alice","createdKey":"k"}`), byRequester, "alice", false},
		{"extra attribute", enc(`{"pk":"REQ#1","sk":"REQ","requester":"alice","createdKey":"k","x":"y"}`), byRequester, "alice", false},
		{"missing attribute", enc(`{"pk":"REQ#1","requester":"alice","createdKey":"k"}`), byRequester, "alice", false},
		{"empty value", enc(`{"pk":"","sk":"REQ","requester":"alice","createdKey":"k"}`), byRequester, "alice", false},
		{"empty object", enc(`{}`), byRequester, "alice", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeCursor(tt.give, tt.idx, tt.hash)
			if tt.wantOK {
				require.NoError(t, err)
				return
			}
			require.Equal(t, access.KindInvalid, access.KindOf(err), "err: %v", err)
		})
	}
}

func TestIndexKeyIsLastEvaluatedKeyShape(t *testing.T) {
	r := access.Request{ID: "1", Requester: "alice", Status: access.StatusActive, EndAt: time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC)}
	it, err := marshalRequest(r)
	require.NoError(t, err)
	require.Equal(t, item{
		AttrPK: sv("REQ#1"), AttrSK: sv("REQ"), AttrDueStatus: sv("ACTIVE"), AttrDueAt: sv("2031-01-02T03:04:05.000000006Z"),
	}, indexKey(it, byDue))
}

func TestDueKeyOrdersLikeTime(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2031, 1, 2, 3, 4, 5, 1, time.UTC),
		time.Date(2031, 1, 2, 3, 4, 5, 100_000_000, time.UTC),
		time.Date(2031, 1, 2, 3, 4, 6, 0, time.FixedZone("east", 3600)).Add(time.Hour),
		time.Date(2031, 1, 2, 4, 4, 6, 0, time.FixedZone("west", -3600)),
	}
	for i := 1; i < len(times); i++ {
		require.Less(t, dueKey(times[i-1]), dueKey(times[i]), "%v before %v", times[i-1], times[i])
		require.Len(t, dueKey(times[i]), len(TimeLayout))
	}
}
