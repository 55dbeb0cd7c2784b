package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/casd/casd/core"
	"github.com/casd/casd/internal/fsutil"
)

type getOpts struct {
	output string      // -o: the target file or directory
	force  bool        // overwrite an existing file
	umask  fs.FileMode // permission bits to clear, the process umask
}

func newGetCmd(g *globalOpts) *cobra.Command {
	var o getOpts
	c := &cobra.Command{
		Use:   "get CID|CAPABILITY|-|@FILE",
		Short: "Save a file under its original name",
		Long: `Save a file in the current directory under its original name, or at
-o PATH (inside PATH if it is a directory), with its original permission
bits less the umask (never setuid, setgid or sticky). A name that starts
with a dot (a hidden or configuration file such as .bashrc) is saved only
under a name given with -o PATH. The file is written to a temporary file
and renamed into place when complete, so a failed get leaves nothing
behind. An existing file is not overwritten without --force.

A capability given as - is read from stdin, and as @FILE from FILE, so that
it does not show in the process list.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := refArg(args[0], cmd.InOrStdin())
			if err != nil {
				return err
			}
			o.umask = processUmask()
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runGet(cmd.Context(), b, o, ref, cmd.OutOrStdout())
			})
		},
	}
	c.Flags().StringVarP(&o.output, "output", "o", "", "write to this file, or into this directory")
	c.Flags().BoolVar(&o.force, "force", false, "overwrite an existing file")
	return c
}

func runGet(ctx context.Context, b core.Files, o getOpts, ref string, stdout io.Writer) error {
	t, err := resolveGetTarget(o.output)
	if err != nil {
		return err
	}
	var (
		tmp    *fsutil.File
		target string
		mode   fs.FileMode
	)
	defer func() {
		if tmp != nil {
			_ = tmp.Abort()
		}
	}()
	err = b.Cat(ctx, ref, func(fi core.FileInfo) (io.Writer, error) {
		target, err = t.path(fi.Name)
		if err != nil {
			return nil, err
		}
		if err := checkTarget(target, o.force); err != nil {
			return nil, err
		}
		mode = fileMode(fi.Mode) &^ o.umask
		tmp, err = fsutil.Create(target, mode)
		if err != nil {
			return nil, err
		}
		return tmp, nil
	})
	if err == nil && tmp == nil {
		err = errors.New("no file was opened")
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", ref, err)
	}
	commit := tmp.CommitNew
	if o.force {
		commit = tmp.Commit
	}
	if err := commit(); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return existsError(target)
		}
		return fmt.Errorf("get %s: %w", ref, err) // err names target
	}
	_, err = fmt.Fprintf(stdout, "saved %s\n", target)
	return err
}

// getTarget is where get saves a file: a fixed path, or a directory in
// which the file keeps its original name.
type getTarget struct {
	dir  string // directory of the file
	name string // the file's name; "" to use the original name
}

// resolveGetTarget interprets -o: "" is the current directory, an existing
// directory receives the file under its original name, anything else is
// the file's path.
func resolveGetTarget(output string) (getTarget, error) {
	if output == "" {
		return getTarget{dir: "."}, nil
	}
	fi, err := os.Stat(output)
	switch {
	case err == nil && fi.IsDir():
		return getTarget{dir: output}, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return getTarget{}, badInput(fmt.Errorf("get: output %s: %w", output, err))
	}
	if strings.HasSuffix(output, string(filepath.Separator)) {
		return getTarget{}, badInput(fmt.Errorf("get: output %s: no such directory", output))
	}
	t := getTarget{dir: filepath.Dir(output), name: filepath.Base(output)}
	if fi, err := os.Stat(t.dir); err != nil || !fi.IsDir() {
		return getTarget{}, badInput(fmt.Errorf("get: output %s: no such directory %s", output, t.dir))
	}
	return t, nil
}

// path returns the file's path for the original name recorded in the
// file's manifest. That name comes from whoever added the file, so only
// its last element is used, and names that are not a plain file name are
// refused.
func (t getTarget) path(original string) (string, error) {
	name := t.name
	if name == "" {
		var err error
		if name, err = sanitizeName(original); err != nil {
			return "", err
		}
	}
	return filepath.Join(t.dir, name), nil
}

// sanitizeName returns the last element of a file name from a manifest, or
// an error if nothing usable remains. A name with a leading dot ("."
// and ".." too) is refused: whoever added the file chose it, and a
// .bashrc or .profile dropped into the current directory runs code.
func sanitizeName(original string) (string, error) {
	name := filepath.Base(filepath.Clean("/" + original))
	if name == "/" || name == "" ||
		strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", badInput(fmt.Errorf("the file's name %q is not usable here; save it with -o PATH", original))
	}
	if strings.HasPrefix(name, ".") {
		return "", badInput(fmt.Errorf("the file's name %q starts with a dot (a hidden file); save it under a name of your choice with -o PATH", original))
	}
	return name, nil
}

// checkTarget refuses a target that is a directory, or that exists when
// force is not set.
func checkTarget(target string, force bool) error {
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory", target)
	case !force:
		return existsError(target)
	}
	return nil
}

func existsError(target string) error {
	return fmt.Errorf("%s exists; use --force to overwrite", target)
}

// fileMode returns the permission bits recorded for a file. Only the
// permission bits are used (no setuid, setgid, sticky or type bits); a
// file recorded without any permission gets 0644, as it could not be read.
// The caller clears the umask's bits: fsutil sets the mode with chmod,
// which the umask does not filter.
func fileMode(m uint32) fs.FileMode {
	if p := fs.FileMode(m).Perm(); p != 0 {
		return p
	}
	return 0o644
}
