package p2p

import golog "github.com/ipfs/go-log/v2"

var log = golog.Logger("casd/p2p")
