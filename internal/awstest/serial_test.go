package awstest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSerialClientOneRequestAtATime: clients made for the same server never
// have two requests in flight at once, whichever client sends them; clients
// of another server are not held up by it.
func TestSerialClientOneRequestAtATime(t *testing.T) {
	var inFlight, most atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n := inFlight.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
		_, _ = io.WriteString(w, "ok")
		inFlight.Add(-1)
	}))
	defer srv.Close()

	a, b := SerialClient(srv.URL, srv.Client()), SerialClient(srv.URL, srv.Client())
	var wg sync.WaitGroup
	for i := range 20 {
		c := a
		if i%2 == 1 {
			c = b
		}
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
			require.NoError(t, err)
			resp, err := c.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, "ok", string(body), "the body survives being read under the lock")
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), most.Load(), "one request at a time")

	other := SerialClient(srv.URL+"/other", srv.Client())
	assert.NotSame(t, a.(*serialClient).mu, other.(*serialClient).mu, "another server has its own lock")
	assert.Same(t, a.(*serialClient).mu, b.(*serialClient).mu)
}
