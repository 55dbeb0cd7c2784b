// Package fetch retrieves the blocks of a file from the network.
//
// # Nouns
//
//   - A holder is a peer that confirmed, in one /cas/get round trip, that it
//     holds a root whole and pinned. [Retriever.FindHolders] finds them: the
//     known replicas ([peers.Hints]) first, then the DHT's providers, each
//     asked as the lookup finds it; the connected peers come last,
//     unconfirmed, as a last resort.
//   - A [Sources] set is the pure state of one read: the peers to ask, in
//     the order they were found, those dropped for lying or being
//     unreachable, and a round-robin cursor. It does no I/O.
//   - A [Fetcher] is a dag.BlockGetter for one file: the local store first,
//     then the sources, every block verified against its CID, the local
//     ones too: a damaged local block is fetched from the sources and
//     rewritten in place ([Rewriter]). It owns the lookup goroutine that
//     feeds its sources; [Fetcher.Close] waits for it.
package fetch
