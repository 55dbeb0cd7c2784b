package node

import (
	"log/slog"

	golog "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/gologshim"
)

// log is the logger of package node.
var log = golog.Logger("casd/node")

// RouteLibp2pLogs sends everything logged through log/slog, and everything
// go-libp2p logs through its gologshim loggers, to go-log, so that
// GOLOG_LOG_LEVEL (and golog.SetLogLevel) controls the whole process and every
// line has go-log's format.
//
// Call it once at the very start of main, before any libp2p host exists:
// a gologshim logger binds its handler on its first log call, and a logger that
// has already logged keeps writing to stderr on its own. It is safe to call more
// than once.
func RouteLibp2pLogs() {
	h := golog.SlogHandler()
	slog.SetDefault(slog.New(h))
	gologshim.SetDefaultHandler(h)
}
