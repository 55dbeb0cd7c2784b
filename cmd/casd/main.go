package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	logging "github.com/ipfs/go-log/v2"
	"github.com/spf13/cobra"

	"github.com/casd/casd/node"
)

var log = logging.Logger("casd/cmd")

// version is the release of this binary, set at build time with
// -ldflags "-X main.version=1.2.3".
var version = "0.1.0-dev"

// globalOpts are the flags every command shares.
type globalOpts struct {
	repo string // --repo: the repo directory ("" means $CASD_PATH, then ~/.casd)

	// stderr is the diagnostics stream run was given, for the code below
	// commands (openBackend's waits); nil means os.Stderr.
	stderr io.Writer

	// started is set once cobra has parsed the flags and arguments and is
	// about to run a command, so that any error before it is a usage error.
	started bool
}

func main() {
	node.RouteLibp2pLogs()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// The first signal cancels the command, which then cleans up; a second
	// one kills the process as usual.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line args and returns the process exit code.
// On failure it prints exactly one line, "Error: <message>", to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globalOpts{stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if !g.started {
		err = usageError(cmd, err)
	}
	fmt.Fprintln(stderr, "Error: "+errorLine(err))
	return exitCode(err)
}

const rootLong = `casd stores files encrypted on your disk and on a few other peers, and gets
them back by their content identifier (CID) from whichever peers hold them.

Commands that need the node talk to the running daemon of the repo, or open
the repo directly when no daemon runs. The repo is --repo DIR, else
$CASD_PATH, else ~/.casd.

Data goes to stdout; diagnostics and progress go to stderr.

Exit codes:
  0  success
  1  other failure
  2  usage or bad input (bad arguments, not a CID or capability, missing
     file, directory given, unknown config key, bad value)
  3  not found (unknown CID, block not in the repo)
  4  integrity or authentication failure (corrupt or truncated block, wrong
     capability key or passphrase, CID of a chunk rather than a file, a
     capability is needed)
  5  repo busy (locked by another process), no repo or a newer repo
     version, or the command needs the daemon`

func newRootCmd(g *globalOpts) *cobra.Command {
	root := &cobra.Command{
		Use:           "casd",
		Short:         "Peer-to-peer encrypted content-addressed storage",
		Long:          rootLong,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			g.started = true
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetVersionTemplate("casd version {{.Version}}\n")
	root.PersistentFlags().StringVar(&g.repo, "repo", "", "repo directory (default $CASD_PATH, else ~/.casd)")
	root.AddCommand(
		newInitCmd(g),
		newConfigCmd(g),
		newAddCmd(g),
		newCatCmd(g),
		newGetCmd(g),
		newLsCmd(g),
		newShareCmd(g),
		newRefsCmd(g),
		newBlockCmd(g),
		newRepoCmd(g),
		newKeyCmd(g),
		newIDCmd(g),
		newConnectCmd(g),
		newBootstrapCmd(g),
		newPeersCmd(g),
		newStatusCmd(g),
		newRepairCmd(g),
		newRmCmd(g),
		newVersionCmd(g),
		newDaemonCmd(g),
	)
	return root
}

// newGroupCmd returns a command that only groups subcommands: run alone, or
// with an unknown subcommand, it is a usage error.
func newGroupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError(cmd, fmt.Errorf("missing subcommand"))
		},
	}
	c.AddCommand(subs...)
	return c
}

// agentVersion is what the node tells peers and `casd id` it is.
func agentVersion() string { return "casd/" + version }
