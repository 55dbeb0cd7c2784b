// Command casd is the command-line interface of casd, a peer-to-peer,
// content-addressed storage daemon that keeps every file encrypted on its
// owner's disk and on a few other peers.
//
// Usage:
//
//	casd init                   create a repo (~/.casd, $CASD_PATH or --repo)
//	casd add FILE               store a file; prints its CID
//	casd cat CID|CAPABILITY     write a file's bytes to stdout
//	casd get CID|CAPABILITY     save a file under its original name
//	casd share CID              print a capability that lets others read it
//	casd daemon                 run the node on the network
//
// Run "casd --help" for every command and "casd COMMAND --help" for its flags.
//
// # Backends
//
// A command that needs the node talks to the daemon of its repo over the
// repo's API socket when one runs, and otherwise opens the repo itself, under
// the repo lock, as an offline node (see openBackend). Network commands
// (connect, peers, status) need the daemon; those that edit the config
// (config, bootstrap) work on the repo's file, daemon or not. Each runX function takes only
// the concern of [core.Backend] it uses ([core.Files], [core.Blocks],
// [core.Repo] or [core.Network]), so that its test fakes only that.
//
// # Output
//
// Data goes to stdout, diagnostics and progress bars to stderr, and --json
// gives machine-readable output where it applies. A failure prints exactly
// one line "Error: <what failed>: <why>" on stderr and exits with a code
// that says what the user can do about it (see exitCode):
//
//	0  success
//	1  other failure
//	2  usage or bad input
//	3  not found
//	4  integrity or authentication failure
//	5  repo busy, missing or of a newer version, or the daemon is needed
package main
