package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// envPassphrase names the environment variable that holds the key file
// passphrase, for scripts; without it casd asks on the terminal.
const envPassphrase = "CASD_PASSPHRASE"

// errNoPassphrase is returned when there is no passphrase to be had.
var errNoPassphrase = errors.New("no passphrase: set " + envPassphrase + " or run on a terminal")

// readPassphrase returns the key file passphrase: $CASD_PASSPHRASE if set,
// else what the user types on the terminal (stdin) after prompt, which goes
// to stderr. With confirm the user types it twice and both must match.
// An empty passphrase is refused.
func readPassphrase(prompt string, confirm bool, stderr io.Writer) ([]byte, error) {
	if p, ok := os.LookupEnv(envPassphrase); ok {
		if p == "" {
			return nil, badInput(fmt.Errorf("read passphrase: %s is empty", envPassphrase))
		}
		return []byte(p), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, badInput(errNoPassphrase)
	}
	p, err := askPassphrase(fd, prompt, stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		again, err := askPassphrase(fd, "Repeat the passphrase: ", stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, again) {
			return nil, badInput(errors.New("read passphrase: the passphrases do not match"))
		}
	}
	return p, nil
}

func askPassphrase(fd int, prompt string, stderr io.Writer) ([]byte, error) {
	fmt.Fprint(stderr, prompt)
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, badInput(errors.New("read passphrase: empty passphrase"))
	}
	return p, nil
}
