//go:build race

package integration

// raceEnabled makes TestMain build the casd binary with -race too, so that
// data races inside the binary fail the commands that hit them.
const raceEnabled = true
