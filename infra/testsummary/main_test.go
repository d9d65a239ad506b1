package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

const stream = `{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"    a_test.go:1: awstest: moto_server at http://127.0.0.1:1\n"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.1}
{"Action":"output","Package":"p","Test":"TestB","Output":"    b_test.go:9: moto_server not found: install it\n"}
{"Action":"output","Package":"p","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestB","Elapsed":0}
{"Action":"pass","Package":"p","Test":"TestC","Elapsed":0}
{"Action":"pass","Package":"p","Elapsed":0.3}
`

func TestSummary(t *testing.T) {
	var out strings.Builder
	assert.Equal(t, 0, run(strings.NewReader(stream), &out, false))
	assert.Contains(t, out.String(), "tests: 2 passed, 0 failed, 1 skipped; 1 ran against a real moto_server")
	assert.Contains(t, out.String(), "skipped: p TestB: b_test.go:9: moto_server not found: install it")

	out.Reset()
	assert.Equal(t, 1, run(strings.NewReader(stream), &out, true), "CI fails on a skip for a missing tool")

	fail := `{"Action":"output","Package":"p","Test":"TestD","Output":"boom\n"}
{"Action":"fail","Package":"p","Test":"TestD","Elapsed":0}
{"Action":"fail","Package":"p","Elapsed":0}
`
	out.Reset()
	assert.Equal(t, 1, run(strings.NewReader(fail), &out, false))
	assert.Contains(t, out.String(), "boom")
	assert.Contains(t, out.String(), "FAIL p")
}
