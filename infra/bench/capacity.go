package bench

import (
	"math"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The DynamoDB capacity model, per the developer guide ("Item sizes and
// formats", "Read/write capacity mode", "Managing capacity for
// transactions", "Global secondary indexes: provisioned throughput"):
//
//   - item size: per attribute, the UTF-8 length of its name plus its value
//     (string: UTF-8 bytes; number: 1 byte per two significant digits plus
//     1; binary: bytes; boolean and null: 1; list and map: 3 bytes plus 1 per
//     element plus the elements, map keys counted like names; sets: the sum
//     of their elements);
//   - write: 1 write unit per started KB of the larger of the old and the new
//     item, at least 1; transactional writes count twice;
//   - read: 1 read unit per started 4 KB, strongly consistent; half of that
//     eventually consistent; transactional reads twice. A Query rounds the
//     sum of the items it read, not each item; a GetItem that finds nothing
//     still costs the minimum;
//   - a global secondary index is written whenever an item enters, leaves or
//     changes in it: 1 write unit per started KB of the index entry, 2 writes
//     (delete and put) when the index key itself changes. Index writes are
//     propagated asynchronously and are not transactional, so they count once.

// ItemSize is the size DynamoDB bills for item.
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + ValueSize(v)
	}
	return n
}

// ValueSize is the billed size of one attribute value (without its name).
func ValueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return NumberSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += NumberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + ValueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + ValueSize(e)
		}
		return n
	}
	return 0
}

// NumberSize is the billed size of a number: one byte per two significant
// digits, plus one.
func NumberSize(s string) int {
	s = strings.TrimLeft(s, "+-")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	s = strings.ReplaceAll(s, ".", "")
	s = strings.Trim(s, "0")
	digits := utf8.RuneCountInString(s)
	if digits == 0 {
		return 1
	}
	return (digits+1)/2 + 1
}

// WriteUnits is the standard write cost of an item of size bytes.
func WriteUnits(size int) float64 {
	return math.Max(1, math.Ceil(float64(size)/1024))
}

// ReadUnits is the read cost of size bytes read in one request.
func ReadUnits(size int, consistent bool) float64 {
	u := math.Max(1, math.Ceil(float64(size)/4096))
	if !consistent {
		u /= 2
	}
	return u
}
