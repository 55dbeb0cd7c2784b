package api_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/casd/casd/api"
	"github.com/casd/casd/core"
)

// The daemon serves its node on a socket in the repo; the CLI dials it and
// calls the same methods it would call on the node.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "casd-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "api.sock")

	// The daemon's side. It serves a whole *node.Node with
	// api.NewServer(n); this one serves the files concern only, and its
	// other endpoints answer that this daemon does not serve them.
	var files core.Files = newStore()
	l, err := api.ListenUnix(sock)
	if err != nil {
		panic(err)
	}
	srv := api.NewServerOf(api.Backends{Files: files})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	// The CLI's side.
	c, err := api.Dial(ctx, sock)
	if err != nil {
		panic(err) // errors.Is(err, api.ErrNoDaemon): open the repo instead
	}
	res, err := c.Add(ctx, strings.NewReader("hello\n"), core.AddOptions{Name: "hello.txt"})
	if err != nil {
		panic(err)
	}
	list, err := c.Ls(ctx)
	if err != nil {
		panic(err)
	}
	for _, f := range list {
		fmt.Println(f.Name, f.Size, f.Cid == res.Cid)
	}
	_, err = c.RepoStat(ctx)
	fmt.Println(err, core.KindOf(err))

	_ = c.Close()
	if err := srv.Shutdown(ctx); err != nil {
		panic(err)
	}
	fmt.Println(<-served)
	// Output:
	// hello.txt 6 true
	// api: this daemon does not serve repo busy
	// <nil>
}
