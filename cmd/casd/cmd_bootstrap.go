package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/casd/casd/config"
)

const bootstrapNote = `The list is the repo's config key Bootstrap. It can be changed while a
daemon runs: the daemon reads it when it starts. A bad address (not a
multiaddr, no /p2p/<peer id>, no address to dial, or this node's own peer
ID) is refused with exit code 2, and then nothing is written.`

func newBootstrapCmd(g *globalOpts) *cobra.Command {
	c := newGroupCmd("bootstrap", "List, add or remove the bootstrap peers",
		newBootstrapListCmd(g), newBootstrapAddCmd(g), newBootstrapRmCmd(g))
	c.Long = `List, add or remove the peers the node dials when it starts, to join the
network. Each is a multiaddr ending in /p2p/<peer id>.

` + bootstrapNote
	return c
}

func newBootstrapListCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "Print the bootstrap peers, one per line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			repo, err := openRepo(g)
			if err != nil {
				return err
			}
			return printLines(cmd.OutOrStdout(), repo.Config.Bootstrap)
		},
	}
}

func newBootstrapAddCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "add <multiaddr>...",
		Short: "Add bootstrap peers",
		Long: `Add bootstrap peers to the end of the list; one already in it is left
where it is.

` + bootstrapNote,
		Example: `  casd bootstrap add /ip4/192.0.2.7/tcp/4001/p2p/12D3KooW...`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return editBootstrap(g, func(list []string, self string) ([]string, error) {
				return bootstrapAdd("bootstrap add", list, args, self)
			})
		},
	}
}

func newBootstrapRmCmd(g *globalOpts) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "rm <multiaddr>... | rm --all",
		Short: "Remove bootstrap peers",
		Long: `Remove bootstrap peers from the list, or all of them with --all. An
address that is not in the list is bad input, and then nothing is removed.

` + bootstrapNote,
		// An error here, before the command runs, is a usage error (see run).
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case all && len(args) > 0:
				return errors.New("--all takes no addresses")
			case !all && len(args) == 0:
				return errors.New("requires at least 1 address, or --all")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return editBootstrap(g, func(list []string, self string) ([]string, error) {
				if all {
					return []string{}, nil
				}
				return bootstrapRm(list, args, self)
			})
		},
	}
	c.Flags().BoolVar(&all, "all", false, "remove every bootstrap peer")
	return c
}

// editBootstrap replaces the repo's Bootstrap list by what edit makes of
// it and saves the config; an error of edit writes nothing.
func editBootstrap(g *globalOpts, edit func(list []string, self string) ([]string, error)) error {
	repo, err := openRepo(g)
	if err != nil {
		return err
	}
	list, err := edit(repo.Config.Bootstrap, repo.Config.Identity.PeerID)
	if err != nil {
		return err
	}
	c := repo.Config.Clone()
	c.Bootstrap = list
	return repo.SaveConfig(c)
}

// bootstrapAdd returns list with the addresses of add appended, in their
// canonical form, skipping those already in it. Any bad address is bad
// input naming it, after op.
func bootstrapAdd(op string, list, add []string, self string) ([]string, error) {
	out := slices.Clone(list)
	keys, err := canonicalAddrs(list, self)
	if err != nil {
		return nil, err
	}
	for _, s := range add {
		c, err := config.CanonicalBootstrapAddr(s, self)
		if err != nil {
			return nil, badInput(fmt.Errorf("%s: %w", op, err))
		}
		if !slices.Contains(keys, c) {
			keys = append(keys, c)
			out = append(out, c)
		}
	}
	return out, nil
}

// bootstrapRm returns list without the addresses of rm (compared in their
// canonical form). An address that is bad, or not in list, is bad input
// naming it.
func bootstrapRm(list, rm []string, self string) ([]string, error) {
	keys, err := canonicalAddrs(list, self)
	if err != nil {
		return nil, err
	}
	drop := make([]bool, len(list))
	for _, s := range rm {
		c, err := config.CanonicalBootstrapAddr(s, self)
		if err != nil {
			return nil, badInput(fmt.Errorf("bootstrap rm: %w", err))
		}
		i := slices.Index(keys, c)
		if i < 0 {
			return nil, badInput(fmt.Errorf("bootstrap rm: %q: not in the bootstrap list", s))
		}
		drop[i] = true
	}
	out := []string{}
	for i, s := range list {
		if !drop[i] {
			out = append(out, s)
		}
	}
	return out, nil
}

// canonicalAddrs returns the canonical form of each address of list (the
// repo's, which its config's validation already checked).
func canonicalAddrs(list []string, self string) ([]string, error) {
	keys := make([]string, 0, len(list))
	for _, s := range list {
		c, err := config.CanonicalBootstrapAddr(s, self)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: config: %w", err)
		}
		keys = append(keys, c)
	}
	return keys, nil
}

// printLines writes each of lines on a line of its own.
func printLines(stdout io.Writer, lines []string) error {
	w := bufio.NewWriter(stdout)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	return w.Flush()
}
