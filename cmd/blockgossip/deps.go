//go:build tools

// This file pins the module's chosen dependencies in go.mod until code in
// the tree imports each of them; delete a line once a real import exists.
package main

import (
	_ "golang.org/x/crypto/hkdf"
	_ "golang.org/x/time/rate"
)
