package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/casd/casd/config"
	"github.com/casd/casd/crypt"
)

type initOpts struct {
	profile   string   // config profile
	restore   string   // key file to restore the owner's keys from
	bootstrap []string // bootstrap peers, instead of the profile's
}

func newInitCmd(g *globalOpts) *cobra.Command {
	var o initOpts
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a new repo",
		Long: `Create a new repo: a fresh peer identity, the owner's keys and a config
from a profile. With --restore the owner's keys come from a key file made by
'casd key export', so that this node opens the owner's files and takes over
their repair. An existing repo is never touched. Each --bootstrap adds a
peer to dial at start (a multiaddr ending in /p2p/<peer id>); a bad one is
refused before anything is created.

The key file's passphrase comes from $CASD_PASSPHRASE, else the terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInit(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&o.profile, "profile", config.ProfileDefault,
		"config profile: "+strings.Join(config.Profiles, ", "))
	c.Flags().StringVar(&o.restore, "restore", "", "restore the owner's keys from this key file")
	c.Flags().StringArrayVar(&o.bootstrap, "bootstrap", nil, "bootstrap peer `multiaddr` (repeatable)")
	return c
}

func runInit(_ context.Context, g *globalOpts, o initOpts, stdout, stderr io.Writer) error {
	dir, err := config.ResolvePath(g.repo)
	if err != nil {
		return err
	}
	if !slices.Contains(config.Profiles, o.profile) {
		return badInput(fmt.Errorf("init: unknown profile %q (valid: %s)", o.profile, strings.Join(config.Profiles, ", ")))
	}
	opts := config.InitOptions{Profile: o.profile}
	if opts.Bootstrap, err = bootstrapAdd("init --bootstrap", nil, o.bootstrap, ""); err != nil {
		return err
	}
	if o.restore != "" {
		// Refuse an existing repo before asking for a passphrase.
		if _, err := config.Open(dir); err == nil {
			return fmt.Errorf("init %s: %w", dir, config.ErrRepoExists)
		}
		keys, err := readKeyFile(o.restore, stderr)
		if err != nil {
			return err
		}
		opts.Keys = keys
	}
	repo, err := config.Init(dir, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "initialized casd repo at %s\n", repo.Path)
	fmt.Fprintf(stdout, "peer identity: %s\n", repo.PeerID())
	return nil
}

// readKeyFile opens the key file at path with a passphrase from the
// environment or the terminal.
func readKeyFile(path string, stderr io.Writer) (*config.Keys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, badInput(fmt.Errorf("read key file: %w", err))
	}
	pass, err := readPassphrase(fmt.Sprintf("Passphrase for %s: ", path), false, stderr)
	if err != nil {
		return nil, err
	}
	s, err := crypt.OpenKeyFile(data, pass)
	switch {
	case errors.Is(err, crypt.ErrUnauthenticated):
		return nil, integrityError(fmt.Errorf("open key file %s: wrong passphrase or corrupt key file", path))
	case err != nil:
		return nil, badInput(fmt.Errorf("open key file %s: %w", path, err))
	}
	return &config.Keys{Master: s.Master, Convergence: s.Convergence}, nil
}
