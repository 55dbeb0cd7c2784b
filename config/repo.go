package config

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/casd/casd/internal/fsutil"
)

var log = logging.Logger("casd/config")

// RepoVersion is the on-disk format version this casd reads and writes.
const RepoVersion = 1

// Errors callers branch on. They are returned wrapped; compare with errors.Is.
var (
	ErrRepoExists = errors.New("config: repo already exists")
	ErrNoRepo     = errors.New("config: no casd repo (run 'casd init')")
	ErrRepoLocked = errors.New("config: repo is locked by another casd process")
	ErrNewerRepo  = errors.New("config: repo version is newer than this casd supports")
	ErrUnknownKey = errors.New("config: unknown key")
)

// Names inside a repo directory (see the package doc for the layout).
const (
	versionFile      = "version"
	configFile       = "config"
	keysDirName      = "keys"
	identityFile     = "identity"
	masterFile       = "master"
	convergenceFile  = "convergence"
	blocksDirName    = "blocks"
	datastoreDirName = "datastore"
	metaFile         = "meta.db"
	lockFile         = "repo.lock"
	apiSocket        = "api.sock"
	peersFile        = "peers.json"
)

// EnvPath is the environment variable that names the repo when no flag does.
const EnvPath = "CASD_PATH"

// DefaultDirName is the repo directory under the home directory.
const DefaultDirName = ".casd"

// KeySize is the size in bytes of the master key and the convergence secret.
const KeySize = 32

// Keys are the node owner's secrets. Master wraps every file key and derives
// the owner's signing key; Convergence keys convergent chunk encryption.
// Never log them.
type Keys struct {
	Master, Convergence [KeySize]byte
}

// String redacts the keys, so that printing a Keys or a [Repo] by mistake
// (%v, %+v) does not leak them.
func (Keys) String() string { return "config.Keys{REDACTED}" }

// GoString redacts the keys for %#v too.
func (Keys) GoString() string { return "config.Keys{REDACTED}" }

// InitOptions configures [Init].
type InitOptions struct {
	// Profile is "default", "local" or "server"; "" means "default".
	Profile string
	// Keys, if non-nil, are restored instead of generating new ones
	// (casd init --restore).
	Keys *Keys
	// Bootstrap, if non-empty, replaces the profile's bootstrap peers
	// (casd init --bootstrap): multiaddrs ending in /p2p/<peer id>. They
	// are validated before anything is written.
	Bootstrap []string
}

// Repo is an opened casd repo. Its fields are loaded by [Open] or [Init].
// A Repo may be read from several goroutines; [Repo.SaveConfig] replaces
// Config, so a caller that saves while others read Config synchronizes them.
type Repo struct {
	Path     string // absolute path of the repo directory
	Config   *Config
	Keys     Keys
	Identity crypto.PrivKey // libp2p Ed25519 identity

	peerID peer.ID

	// saveMu serializes SaveConfig's file writes.
	saveMu sync.Mutex
}

// ResolvePath returns the absolute repo path: flagValue if non-empty, else
// $CASD_PATH, else ~/.casd. A leading "~/" is expanded to the home directory.
func ResolvePath(flagValue string) (string, error) {
	p := flagValue
	if p == "" {
		p = os.Getenv(EnvPath)
	}
	if p == "" {
		p = filepath.Join("~", DefaultDirName)
	}
	if p == "~" || strings.HasPrefix(p, "~"+string(filepath.Separator)) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("config: resolve repo path %s: %w", p, err)
		}
		p = filepath.Join(home, p[1:])
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("config: resolve repo path %s: %w", p, err)
	}
	return abs, nil
}

// Init creates a repo in dir: the directory (mode 0700 if it is new), fresh
// or restored keys, a new identity, the profile's config and the version
// file. It refuses with [ErrRepoExists] if dir already holds a config, a
// version file or a keys directory, and then writes nothing. On any failure
// it removes what it created and nothing else: other contents of an existing
// dir are never touched. The blocks and datastore directories are left to
// the blockstore.
func Init(dir string, opts InitOptions) (_ *Repo, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("config: init %s: %w", dir, err)
	}
	cfg, err := DefaultConfig(opts.Profile)
	if err != nil {
		return nil, err
	}
	if len(opts.Bootstrap) > 0 {
		cfg.Bootstrap = slices.Clone(opts.Bootstrap)
	}
	var keys Keys
	if opts.Keys != nil {
		keys = *opts.Keys
		if keys.Master == ([KeySize]byte{}) || keys.Convergence == ([KeySize]byte{}) {
			return nil, fmt.Errorf("config: init %s: restored keys are all zero", dir)
		}
	} else {
		// crypto/rand.Read never fails (it crashes the program instead).
		_, _ = rand.Read(keys.Master[:])
		_, _ = rand.Read(keys.Convergence[:])
	}
	ident, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("config: init %s: generate identity: %w", dir, err)
	}
	identBytes, err := crypto.MarshalPrivateKey(ident)
	if err != nil {
		return nil, fmt.Errorf("config: init %s: encode identity: %w", dir, err)
	}
	id, err := peer.IDFromPrivateKey(ident)
	if err != nil {
		return nil, fmt.Errorf("config: init %s: peer ID: %w", dir, err)
	}
	cfg.Identity.PeerID = id.String()
	// Before anything is created: a bad bootstrap address leaves no trace.
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfgBytes, err := cfg.marshal()
	if err != nil {
		return nil, err
	}

	for _, name := range []string{configFile, versionFile} {
		ok, err := exists(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("config: init %s: %w", dir, err)
		}
		if ok {
			return nil, fmt.Errorf("config: init %s: %s exists: %w", dir, name, ErrRepoExists)
		}
	}

	// From here on, every step registers how to undo itself.
	var undo []func() error
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				err = errors.Join(err, fmt.Errorf("config: init %s: clean up: %w", dir, uerr))
			}
		}
	}()

	created, err := mkdirAllTracked(dir, 0o700)
	if err != nil {
		return nil, fmt.Errorf("config: init %s: %w", dir, err)
	}
	if created != "" {
		undo = append(undo, func() error { return os.RemoveAll(created) })
	}

	// Mkdir is the atomic claim on the repo: of two concurrent Inits only
	// one creates keys/, and an existing keys/ (whose secrets we must not
	// overwrite) stops us.
	keysDir := filepath.Join(dir, keysDirName)
	if err := os.Mkdir(keysDir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("config: init %s: %s exists without a config (an interrupted init? move it away first): %w", dir, keysDirName, ErrRepoExists)
		}
		return nil, fmt.Errorf("config: init %s: %w", dir, err)
	}
	undo = append(undo, func() error { return os.RemoveAll(keysDir) })
	if err := os.Chmod(keysDir, 0o700); err != nil { // umask may have narrowed it; never widened
		return nil, fmt.Errorf("config: init %s: %w", dir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{identityFile, identBytes},
		{masterFile, keys.Master[:]},
		{convergenceFile, keys.Convergence[:]},
	} {
		if err := writeFile(filepath.Join(keysDir, f.name), f.data, 0o600); err != nil {
			return nil, fmt.Errorf("config: init %s: %w", dir, err)
		}
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("config: init %s: %w", dir, err)
	}

	cfgPath := filepath.Join(dir, configFile)
	undo = append(undo, func() error { return fsutil.RemoveIfExists(cfgPath) })
	if err := writeFile(cfgPath, cfgBytes, 0o600); err != nil {
		return nil, fmt.Errorf("config: init %s: %w", dir, err)
	}
	// The version file goes last: a repo with a version has everything else.
	verPath := filepath.Join(dir, versionFile)
	undo = append(undo, func() error { return fsutil.RemoveIfExists(verPath) })
	if err := writeFile(verPath, []byte(strconv.Itoa(RepoVersion)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("config: init %s: %w", dir, err)
	}

	log.Infow("initialized repo", "path", dir, "peer", id, "profile", opts.Profile, "restored", opts.Keys != nil)
	return &Repo{Path: dir, Config: cfg, Keys: keys, Identity: ident, peerID: id}, nil
}

// Open loads the repo in dir. It returns an error wrapping [ErrNoRepo] if
// dir holds no repo, and [ErrNewerRepo] if the repo's version is newer than
// [RepoVersion]. It decodes the config strictly, checks that the key files
// hold 32 bytes and that the identity key matches Identity.PeerID. Open
// does not take the lock; see [Repo.Lock].
func Open(dir string) (*Repo, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("config: open repo %s: %w", dir, err)
	}
	if err := checkVersion(dir); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return nil, fmt.Errorf("config: open repo %s: read config: %w", dir, err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("open repo %s: %w", dir, err)
	}
	r := &Repo{Path: dir, Config: cfg}
	keysDir := filepath.Join(dir, keysDirName)
	checkPrivate(keysDir)
	for _, k := range []struct {
		name string
		dst  *[KeySize]byte
	}{
		{masterFile, &r.Keys.Master},
		{convergenceFile, &r.Keys.Convergence},
	} {
		b, err := readSecret(filepath.Join(keysDir, k.name))
		if err != nil {
			return nil, fmt.Errorf("config: open repo %s: %w", dir, err)
		}
		if len(b) != KeySize {
			return nil, fmt.Errorf("config: open repo %s: %s/%s: %d bytes, want %d", dir, keysDirName, k.name, len(b), KeySize)
		}
		copy(k.dst[:], b)
	}
	b, err := readSecret(filepath.Join(keysDir, identityFile))
	if err != nil {
		return nil, fmt.Errorf("config: open repo %s: %w", dir, err)
	}
	r.Identity, err = crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("config: open repo %s: decode %s/%s: %w", dir, keysDirName, identityFile, err)
	}
	if t := r.Identity.Type(); t != crypto.Ed25519 {
		return nil, fmt.Errorf("config: open repo %s: %s/%s: key type %s, want Ed25519", dir, keysDirName, identityFile, t)
	}
	r.peerID, err = peer.IDFromPrivateKey(r.Identity)
	if err != nil {
		return nil, fmt.Errorf("config: open repo %s: peer ID: %w", dir, err)
	}
	if cfg.Identity.PeerID != r.peerID.String() {
		return nil, fmt.Errorf("config: open repo %s: config Identity.PeerID %q does not match %s/%s (%s)", dir, cfg.Identity.PeerID, keysDirName, identityFile, r.peerID)
	}
	log.Debugw("opened repo", "path", dir, "peer", r.peerID)
	return r, nil
}

// checkVersion reads dir's version file.
func checkVersion(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, versionFile))
	if errors.Is(err, fs.ErrNotExist) {
		// A config without a version is a damaged repo, not a missing one:
		// telling the user to run init would not help (init refuses).
		if ok, _ := exists(filepath.Join(dir, configFile)); ok {
			return fmt.Errorf("config: open repo %s: %s file missing but %s exists: damaged repo", dir, versionFile, configFile)
		}
		return fmt.Errorf("config: open repo %s: %w", dir, ErrNoRepo)
	}
	if err != nil {
		return fmt.Errorf("config: open repo %s: read version: %w", dir, err)
	}
	v, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || v < 1 {
		return fmt.Errorf("config: open repo %s: invalid version %q", dir, truncate(string(b)))
	}
	if v > RepoVersion {
		return fmt.Errorf("config: open repo %s: repo version %d, this casd supports up to %d: %w", dir, v, RepoVersion, ErrNewerRepo)
	}
	// v < RepoVersion would run migrations here; version 1 is the first.
	return nil
}

// readSecret reads a key file and warns if others can read it.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	checkPrivate(path)
	return b, nil
}

// checkPrivate warns when group or others have access to a secret path.
// It does not refuse: the operator may have reasons, and the data is theirs.
func checkPrivate(path string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warnw("secret is accessible to other users; chmod go-rwx it", "path", path, "mode", fi.Mode().Perm())
	}
}

// PeerID returns the node's peer ID, derived from its identity key.
func (r *Repo) PeerID() peer.ID { return r.peerID }

// ConfigPath returns the path of the config file.
func (r *Repo) ConfigPath() string { return filepath.Join(r.Path, configFile) }

// BlocksDir returns the directory of the blockstore's block files.
func (r *Repo) BlocksDir() string { return filepath.Join(r.Path, blocksDirName) }

// MetaPath returns the path of the blockstore's metadata database.
func (r *Repo) MetaPath() string { return filepath.Join(r.Path, datastoreDirName, metaFile) }

// APISocketPath returns the path of the daemon's API unix socket.
func (r *Repo) APISocketPath() string { return filepath.Join(r.Path, apiSocket) }

// PeersPath returns the path of the remembered peers file, which the
// node's gossip reads at start and writes atomically.
func (r *Repo) PeersPath() string { return filepath.Join(r.Path, peersFile) }

// LockPath returns the path of the repo lock file.
func (r *Repo) LockPath() string { return filepath.Join(r.Path, lockFile) }

// SaveConfig validates c and writes it atomically as the repo's config
// file, then makes a copy of it r.Config. An empty Identity.PeerID is filled
// in; a different one is refused. c itself is not modified or retained.
func (r *Repo) SaveConfig(c *Config) error {
	n := c.Clone()
	if n.Identity.PeerID == "" {
		n.Identity.PeerID = r.peerID.String()
	}
	if n.Identity.PeerID != r.peerID.String() {
		return fmt.Errorf("config: save config: Identity.PeerID %q is not this repo's %s", n.Identity.PeerID, r.peerID)
	}
	n.normalize()
	if err := n.Validate(); err != nil {
		return err
	}
	data, err := n.marshal()
	if err != nil {
		return err
	}
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	if err := writeFile(r.ConfigPath(), data, 0o600); err != nil {
		return fmt.Errorf("config: save config: %w", err)
	}
	r.Config = n
	return nil
}
