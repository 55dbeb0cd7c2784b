// Package fsutil writes files so that a crash or a failed write never leaves
// a half-written file in place, and makes directory changes durable.
//
//	err := fsutil.WriteFile(path, data, 0o600)
//
// # Atomic writes
//
// An atomic write goes to a temporary file in the target's directory (so
// the final rename stays within one file system), which is written,
// fsynced, given its mode, closed and renamed over the target; then the
// directory is fsynced so that the rename itself survives a crash. Until
// the rename, readers see the old file; after it, the whole new one. A
// write that fails removes its temporary file and leaves the target as it
// was. [WriteFile] does this for data in memory, and [File] for data that
// is streamed ([Create], [File.Commit]), optionally refusing to replace an
// existing target ([File.CommitNew]).
//
// A crash can still leave a temporary file behind: a dot file named after
// the target, ".<name>.tmp-<random>". Callers that own a directory, such as
// the blockstore, name their temporary files with a prefix of their own
// ([WriteTemp]) and remove them when they open it.
//
// # Directory sync
//
// [SyncDir] fsyncs a directory, making the creations, renames and removals
// in it durable. On Windows it does nothing: a directory cannot be fsynced
// there (see syncdir_windows.go), so a rename there is atomic but may not
// yet be durable when a write returns.
package fsutil
