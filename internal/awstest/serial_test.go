package awstest

import (
	"context"
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
	assert.NotEqual(t, a.(*serialClient).turn, other.(*serialClient).turn, "another server has its own turn")
	assert.Equal(t, a.(*serialClient).turn, b.(*serialClient).turn)
	assert.Equal(t, a.(*serialClient).turn, SerialClient(srv.URL+"/", srv.Client()).(*serialClient).turn, "one server, however spelt")

	// A caller waiting for its turn gives up with its context.
	a.(*serialClient).turn <- struct{}{} // someone else's request in flight
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	_, err = b.Do(req)
	assert.ErrorIs(t, err, context.Canceled)
	<-a.(*serialClient).turn
}
