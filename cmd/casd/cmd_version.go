package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newVersionCmd(*globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of casd",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "casd version %s\n", version)
			return err
		},
	}
}
