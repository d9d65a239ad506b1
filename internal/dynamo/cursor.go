package dynamo

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/jitaccess/jit/internal/access"
)

// A cursor is opaque to callers: the base64 (URL alphabet, no padding) of
// the JSON of a query's LastEvaluatedKey. Every key attribute of the state
// table and its indexes is a string, so the JSON is a flat string map.

// indexKey is the key DynamoDB would return as LastEvaluatedKey after it:
// the table key plus the index key.
func indexKey(it item, idx index) item {
	key := item{}
	for _, a := range []string{AttrPK, AttrSK, idx.hash, idx.rng} {
		if v, ok := it[a]; ok {
			key[a] = v
		}
	}
	return key
}

func encodeCursor(key item) (string, error) {
	if len(key) == 0 {
		return "", nil
	}
	flat := make(map[string]string, len(key))
	for name, v := range key {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return "", fmt.Errorf("key attribute %s is %T, not a string", name, v)
		}
		flat[name] = s.Value
	}
	b, err := json.Marshal(flat)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeCursor reads a cursor of a query on idx for hashValue; anything
// else, including a cursor of another query, is invalid.
func decodeCursor(cursor string, idx index, hashValue string) (item, error) {
	if cursor == "" {
		return nil, nil
	}
	bad := access.FieldErrorf("cursor", "is not a cursor of this listing")
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, bad
	}
	var flat map[string]string
	if err := json.Unmarshal(b, &flat); err != nil {
		return nil, bad
	}
	want := []string{AttrPK, AttrSK, idx.hash, idx.rng}
	slices.Sort(want)
	if !slices.Equal(slices.Sorted(maps.Keys(flat)), want) || flat[idx.hash] != hashValue {
		return nil, bad
	}
	key := make(item, len(flat))
	for name, v := range flat {
		if v == "" {
			return nil, bad
		}
		key[name] = &types.AttributeValueMemberS{Value: v}
	}
	return key, nil
}
