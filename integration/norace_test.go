//go:build !race

package integration

// raceEnabled is false: the casd binary is built without the race detector.
const raceEnabled = false
