package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
)

func newBlockCmd(g *globalOpts) *cobra.Command {
	return newGroupCmd("block", "Read raw (encrypted) blocks",
		newBlockGetCmd(g),
		newBlockStatCmd(g),
	)
}

func newBlockGetCmd(g *globalOpts) *cobra.Command {
	return &cobra.Command{
		Use:   "get CID",
		Short: "Write a block's raw ciphertext to stdout",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkBlockCid(args[0]); err != nil {
				return err
			}
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runBlockGet(cmd.Context(), b, args[0], cmd.OutOrStdout())
			})
		},
	}
}

func runBlockGet(ctx context.Context, b core.Blocks, cid string, stdout io.Writer) error {
	w := bufio.NewWriter(stdout)
	if err := errors.Join(b.BlockGet(ctx, cid, w), w.Flush()); err != nil {
		return fmt.Errorf("block get %s: %w", cid, err)
	}
	return nil
}

type blockStatOpts struct {
	json bool
}

func newBlockStatCmd(g *globalOpts) *cobra.Command {
	var o blockStatOpts
	c := &cobra.Command{
		Use:   "stat CID",
		Short: "Print a block's CID and size",
		Long:  `Print "<cid> TAB <size>" of a block in the repo.`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkBlockCid(args[0]); err != nil {
				return err
			}
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runBlockStat(cmd.Context(), b, o, args[0], cmd.OutOrStdout())
			})
		},
	}
	c.Flags().BoolVar(&o.json, "json", false, "print JSON {cid, size}")
	return c
}

func runBlockStat(ctx context.Context, b core.Blocks, o blockStatOpts, cid string, stdout io.Writer) error {
	st, err := b.BlockStat(ctx, cid)
	if err != nil {
		return fmt.Errorf("block stat %s: %w", cid, err)
	}
	if o.json {
		return writeJSON(stdout, st)
	}
	_, err = fmt.Fprintf(stdout, "%s\t%d\n", st.Cid, st.Size)
	return err
}
