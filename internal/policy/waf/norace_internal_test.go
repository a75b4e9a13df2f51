//go:build !race

package waf

// raceOn is whether the race detector is on (for the in-package tests).
const raceOn = false
