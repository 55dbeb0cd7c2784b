// Package wire holds the Go code that protoc-gen-go generates from
// protocol/pb/cas.proto (`make proto`). Only package pb uses it: these
// types carry CIDs as unchecked bytes, and pb checks every decoded message
// before handing it out.
package wire
