package node

import (
	"bufio"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	golog "github.com/ipfs/go-log/v2"

	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/stretchr/testify/require"
)

const waitFor = 30 * time.Second

// TestRouteLibp2pLogs checks that a go-libp2p logger and slog's default both
// end up in go-log, at the level go-log sets for their subsystem.
func TestRouteLibp2pLogs(t *testing.T) {
	orig := slog.Default()
	t.Cleanup(func() { slog.SetDefault(orig) })
	RouteLibp2pLogs()
	_, bridged := slog.Default().Handler().(interface{ GoLogBridge() })
	require.True(t, bridged, "slog default handler %T", slog.Default().Handler())

	const sub = "casd-logtest"
	require.NoError(t, golog.SetLogLevel(sub, "debug"))
	pr := golog.NewPipeReader()
	lines := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		// Drain until Close: the pipe blocks every logger while unread.
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "routed through go-log") {
				select {
				case lines <- sc.Text():
				default:
				}
			}
		}
	})
	defer func() {
		require.NoError(t, pr.Close())
		wg.Wait()
	}()

	gologshim.Logger(sub).Debug("routed through go-log", "k", "v")
	select {
	case line := <-lines:
		require.Contains(t, line, sub)
		require.Contains(t, line, `"k":"v"`)
	case <-time.After(waitFor):
		t.Fatal("libp2p log line did not reach go-log")
	}
}
