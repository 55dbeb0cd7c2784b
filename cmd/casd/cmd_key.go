package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/casd/casd/crypt"
	"github.com/casd/casd/internal/fsutil"
)

func newKeyCmd(g *globalOpts) *cobra.Command {
	return newGroupCmd("key", "Export the owner's keys",
		newKeyExportCmd(g),
	)
}

type keyExportOpts struct {
	output string // -o: the key file to write; "" for stdout
}

func newKeyExportCmd(g *globalOpts) *cobra.Command {
	var o keyExportOpts
	c := &cobra.Command{
		Use:   "export",
		Short: "Write the owner's keys to a passphrase-protected key file",
		Long: `Write the owner's master key and convergence secret, sealed under a
passphrase, as an ASCII-armored key file to stdout or to -o FILE (mode 0600;
an existing file is never overwritten). 'casd init --restore FILE' on a new
machine then opens all of the owner's files from their CIDs.

The passphrase comes from $CASD_PASSPHRASE, else it is asked twice on the
terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runKeyExport(cmd.Context(), g, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVarP(&o.output, "output", "o", "", "write the key file here instead of stdout")
	return c
}

func runKeyExport(_ context.Context, g *globalOpts, o keyExportOpts, stdout, stderr io.Writer) error {
	repo, err := openRepo(g)
	if err != nil {
		return err
	}
	if o.output != "" {
		// Fail before asking for a passphrase.
		if _, err := os.Lstat(o.output); err == nil {
			return keyFileExists(o.output)
		}
	}
	pass, err := readPassphrase("Passphrase for the key file: ", true, stderr)
	if err != nil {
		return err
	}
	s := crypt.Secrets{Master: crypt.Key(repo.Keys.Master), Convergence: crypt.Key(repo.Keys.Convergence)}
	file, err := crypt.SealKeyFile(s, pass, crypt.DefaultKDF)
	if err != nil {
		return fmt.Errorf("key export: %w", err)
	}
	if o.output == "" {
		_, err := stdout.Write(file)
		return err
	}
	return writeKeyFile(o.output, file)
}

// writeKeyFile writes data to a new file at path with mode 0600,
// atomically, and never over an existing file.
func writeKeyFile(path string, data []byte) error {
	tmp, err := fsutil.Create(path, 0o600)
	if err != nil {
		return fmt.Errorf("key export: %w", err)
	}
	defer func() { _ = tmp.Abort() }()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("key export: write %s: %w", path, err)
	}
	if err := tmp.CommitNew(); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return keyFileExists(path)
		}
		return fmt.Errorf("key export: %w", err)
	}
	return nil
}

func keyFileExists(path string) error {
	return fmt.Errorf("key export: %s exists; not overwriting it", path)
}
