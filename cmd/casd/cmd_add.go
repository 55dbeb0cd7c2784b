package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/casd/casd/core"
)

type addOpts struct {
	quiet    bool
	progress progressMode
}

func newAddCmd(g *globalOpts) *cobra.Command {
	o := addOpts{progress: progressAuto}
	c := &cobra.Command{
		Use:   "add FILE",
		Short: "Store a file and print its CID",
		Long: `Store a file: split it into encrypted chunks in the repo and, when the
daemon runs, on other peers. Prints "added <cid> <name>". Adding the same file
again yields the same CID and stores nothing new.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBackend(cmd.Context(), g, func(b backend) error {
				return runAdd(cmd.Context(), b, o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
			})
		},
	}
	c.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "print only the CID")
	c.Flags().Var(&o.progress, "progress", "show a progress bar on stderr: auto (on a terminal), true or false")
	return c
}

func runAdd(ctx context.Context, b core.Files, o addOpts, path string, stdout, stderr io.Writer) error {
	// Check before opening too: opening a FIFO would block.
	if fi, err := os.Stat(path); err == nil {
		if err := checkAddable(path, fi); err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return badInput(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("add %s: %w", path, err)
	}
	if err := checkAddable(path, fi); err != nil {
		return err
	}
	name := filepath.Base(path)

	opt := core.AddOptions{Name: name, Mode: uint32(fi.Mode().Perm())}
	var bar *progressbar.ProgressBar
	if o.progress.enabled(stderr) && fi.Size() > 0 {
		bar = newProgressBar(fi.Size(), "adding "+name, stderr)
		opt.Progress = func(stored int64) { _ = bar.Set64(min(stored, fi.Size())) }
	}
	res, err := b.Add(ctx, f, opt)
	if bar != nil {
		if err == nil {
			_ = bar.Finish()
		} else {
			_ = bar.Exit()
		}
	}
	if res == nil {
		if err == nil {
			err = fmt.Errorf("add %s: no result", path)
		}
		return err // the node names the operation and the file
	}
	// A result with an error is a file stored here but not replicated as
	// asked: print its CID, then fail.
	var werr error
	if o.quiet {
		_, werr = fmt.Fprintln(stdout, res.Cid)
	} else {
		_, werr = fmt.Fprintf(stdout, "added %s %s\n", res.Cid, name)
	}
	if err != nil {
		return err
	}
	if res.Goal > 0 && len(res.Replicas) < res.Goal {
		return fmt.Errorf("add %s: %w: reached %d of %d replicas; the local copy is kept and the daemon keeps trying",
			name, core.ErrUnderReplicated, len(res.Replicas), res.Goal)
	}
	return werr
}

// checkAddable returns nil for a regular file, else a bad input error:
// adding directories and special files is not supported.
func checkAddable(path string, fi os.FileInfo) error {
	switch {
	case fi.IsDir():
		return badInput(fmt.Errorf("add %s: is a directory; adding directories is not supported yet", path))
	case !fi.Mode().IsRegular():
		return badInput(fmt.Errorf("add %s: not a regular file", path))
	}
	return nil
}

// newProgressBar returns a byte progress bar on w that shows the amount
// done, the rate and the time left.
func newProgressBar(total int64, desc string, w io.Writer) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
}

// progressMode is the value of a --progress flag.
type progressMode string

const (
	progressAuto  progressMode = "auto"
	progressTrue  progressMode = "true"
	progressFalse progressMode = "false"
)

func (m *progressMode) String() string { return string(*m) }
func (m *progressMode) Type() string   { return "auto|true|false" }

func (m *progressMode) Set(s string) error {
	switch v := progressMode(s); v {
	case progressAuto, progressTrue, progressFalse:
		*m = v
		return nil
	}
	return fmt.Errorf("%q is not one of auto, true, false", s)
}

// enabled reports whether to draw a progress bar on w: always for true,
// for auto only when w is a terminal.
func (m progressMode) enabled(w io.Writer) bool {
	switch m {
	case progressTrue:
		return true
	case progressAuto:
		f, ok := w.(*os.File)
		return ok && term.IsTerminal(int(f.Fd()))
	}
	return false
}
