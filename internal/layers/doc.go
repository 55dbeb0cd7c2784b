// Package layers holds no code: its test checks that the dependencies
// between casd's packages point one way, in the order that
// docs/architecture.md writes down.
package layers
