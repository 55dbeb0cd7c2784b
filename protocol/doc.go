// Package protocol implements the casd stream protocols over libp2p:
//
//   - /cas/get/1.0 ([GetID]): a client asks a peer for blocks by CID, and
//     whether it holds a root complete; the peer streams back each block
//     or says it lacks it. On the same stream a client that holds a block
//     can challenge the peer to prove that it holds it too ([Audit]): a
//     hash over a fresh nonce, the peer's ID and the block, which reveals
//     nothing of the block. The owner of a replica can ask its holder for
//     one proof over every block of the tree ([TreeChallenge],
//     [TreeProofs]), signed so that no one else can make a holder read a
//     whole file.
//   - /cas/store/1.0 ([StoreID]): an owner pushes the blocks of one root to
//     a peer, which checks a signed offer and its quota first, verifies
//     every block against its CID before writing, pins complete roots for
//     the lease the offer grants and acknowledges only what is durably
//     stored. A stream may instead carry one signed lease renewal
//     ([Renew]) or removal ([Remove]).
//   - /cas/peers/1.0 ([PeersID]): two peers swap lists of signed peer
//     records (libp2p record envelopes of peer.PeerRecord), each checked
//     by [DecodePeerRecords]: signed by the peer it names, within
//     [MaxPeerRecords], [MaxRecordAddrs] and [MaxRecordSize]. The client
//     is [ExchangePeers]; the server hands what it receives to a
//     [PeersBackend] and answers with the backend's sample. A list that
//     breaks a rule is rejected whole and the peer struck; so is a peer
//     that the backend says floods ([ErrFlood]).
//
// The wire messages live in package [github.com/casd/casd/protocol/pb];
// docs/wire.md specifies the format and message sequences.
//
// # Serving
//
// A [Service] registers the handlers on a host for the backends it is
// given ([GetBackend], [StoreBackend], [PeersBackend]):
//
//	svc := protocol.New(h, protocol.WithGetBackend(store), protocol.WithStoreBackend(store))
//	svc.Start()
//	defer svc.Close()
//
// # Fetching and storing
//
// [Fetch] and [HasRoot] are one-shot clients of /cas/get/1.0; a
// [GetSession] keeps one stream open for several requests. [Store] pushes
// a root with /cas/store/1.0. Clients verify every block they receive; a
// wrong block yields an error wrapping [ErrBadBlock], meaning the peer
// should be dropped.
//
// # Limits
//
// Every message is a varint length-prefixed frame of at most
// [MaxMessageSize] bytes (block-carrying frames) or [MaxRequestSize] bytes
// (everything else). Every stream has a deadline, refreshed per message:
// the idle timeout, or the caller's context deadline if that is earlier
// (a tree challenge's answer waits for the context alone; the server
// bounds its proof, and runs at most two at a time).
// A handler that sees bad input resets the stream and reports the peer
// through the strike function ([WithStrikeFunc]); [IsPeerFault] tells
// such errors from others. A frame's buffer is
// reserved in the stream's resource scope before it is allocated. A store
// stream also has a minimum rate and an absolute lifetime
// ([WithMinStoreRate]) and accepts only blocks that its root reaches, each
// charged [BlockCharge] bytes on top of its size.
//
// This package knows neither the on-disk block layout nor any key: it
// moves ciphertext blocks named by the CID of their bytes.
package protocol
