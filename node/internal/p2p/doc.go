// Package p2p builds a casd node's libp2p stack ([Stack]): the host with its
// transports (TCP, QUIC, WebSocket), security (Noise, TLS), muxer (yamux),
// connection manager and resource manager with explicit limits for casd's
// protocols ([NewHost]); the private Kademlia DHT under the /cas prefix
// ([NewDHT]), whose provider records of other peers are bounded per peer
// and in total ([ProviderLimits]); and mDNS discovery on the LAN
// ([StartMDNS]). Both tell the caller of the peers they learn of
// ([Options].OnDHTPeer, OnMDNSPeer), so that the node can say where it
// heard of each peer; [Options].WithoutDHT keeps the DHT out of discovery.
//
// It is the only package that builds a host or a DHT. NAT traversal
// (AutoNAT, relays, hole punching) belongs here too.
package p2p
