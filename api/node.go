package api

import "github.com/casd/casd/node"

// The daemon serves a *node.Node; it must keep the method set of Backend.
var _ Backend = (*node.Node)(nil)
