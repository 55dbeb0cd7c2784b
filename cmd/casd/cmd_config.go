package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/casd/casd/config"
)

func newConfigCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "config KEY [VALUE] | config show",
		Short: "Get or set a config value, or show the whole config",
		Long: `Get or set a value of the repo's config file, addressed by a dotted key
such as Replication.Factor or Addresses.Swarm. Without VALUE, print the value
as JSON; with VALUE, a JSON value (quote strings: '"10m"'), set it. A value
is checked before anything is written. 'casd config show' prints the whole
config (it holds no secrets). A running daemon reads the config when it
starts.`,
		Example: `  casd config Replication.Factor
  casd config Replication.Factor 5
  casd config Addresses.Swarm '["/ip4/0.0.0.0/tcp/4001"]'
  casd config show`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfig(cmd.Context(), g, args, cmd.OutOrStdout())
		},
	}
}

func runConfig(_ context.Context, g *globalOpts, args []string, stdout io.Writer) error {
	repo, err := openRepo(g)
	if err != nil {
		return err
	}
	key := args[0]
	switch {
	case key == "show" && len(args) == 1:
		b, err := json.MarshalIndent(repo.Config, "", "  ")
		if err != nil {
			return fmt.Errorf("config show: %w", err)
		}
		_, err = fmt.Fprintf(stdout, "%s\n", b)
		return err
	case len(args) == 1:
		v, err := repo.Config.Get(key)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, v, "", "  "); err != nil {
			return fmt.Errorf("config get %s: %w", key, err)
		}
		buf.WriteByte('\n')
		_, err = buf.WriteTo(stdout)
		return err
	default:
		c, err := repo.Config.Set(key, args[1])
		if err != nil {
			if errors.Is(err, config.ErrUnknownKey) {
				return err
			}
			// Any other Set error is the value's fault: wrong type,
			// out of range, not a multiaddr.
			return badInput(err)
		}
		return repo.SaveConfig(c)
	}
}
