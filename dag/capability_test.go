package dag_test

import (
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"github.com/stretchr/testify/require"

	"github.com/casd/casd/blockstore"
	"github.com/casd/casd/crypt"
	"github.com/casd/casd/dag"
)

var errNotFound = blockstore.ErrNotFound

func cidOf(t testing.TB, data []byte) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: mh.SHA2_256, MhLength: -1}.Sum(data)
	require.NoError(t, err)
	return c
}

func TestCapabilityRoundTrip(t *testing.T) {
	var k crypt.Key
	for i := range k {
		k[i] = byte(i * 7)
	}
	c := dag.Capability{Root: cidOf(t, []byte("root")), Key: k}
	s := c.String()
	require.True(t, strings.HasPrefix(s, dag.CapabilityPrefix))
	for _, r := range s {
		require.True(t, r >= 'a' && r <= 'z' || r >= '0' && r <= '9', "token has %q", r)
	}
	got, err := dag.ParseCapability(s)
	require.NoError(t, err)
	require.Equal(t, c, got)

	ref, err := dag.ParseRef(s)
	require.NoError(t, err)
	require.Equal(t, c.Root, ref.Root)
	require.Equal(t, c, *ref.Cap)

	ref, err = dag.ParseRef(c.Root.String())
	require.NoError(t, err)
	require.Nil(t, ref.Cap)
	require.Equal(t, c.Root, ref.Root)
}

func TestParseCapabilityRejects(t *testing.T) {
	good := dag.Capability{Root: cidOf(t, []byte("root"))}.String()
	flip := []byte(good)
	if flip[30] == 'a' {
		flip[30] = 'b'
	} else {
		flip[30] = 'a'
	}
	cases := map[string]string{
		"empty":          "",
		"prefix only":    dag.CapabilityPrefix,
		"not base32":     dag.CapabilityPrefix + "!!!!",
		"one char typed": string(flip),
		"truncated":      good[:len(good)-3],
		"uppercase":      strings.ToUpper(good),
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := dag.ParseCapability(s)
			require.ErrorIs(t, err, dag.ErrBadCapability)
		})
	}
	_, err := dag.ParseRef("hello")
	require.ErrorIs(t, err, dag.ErrBadRef)
}

func FuzzParseCapability(f *testing.F) {
	f.Add(dag.Capability{Root: cidOf(f, []byte("root"))}.String())
	f.Add("casd1aaaa")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := dag.ParseCapability(s)
		if err != nil {
			return
		}
		// Whatever parses must print back to a token that parses the same.
		again, err := dag.ParseCapability(c.String())
		require.NoError(t, err)
		require.Equal(t, c, again)
	})
}
