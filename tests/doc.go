// Package tests holds blockgossip's multi-process integration suites: they
// build the real binary, start real orderer and peer processes over mutual
// TLS on 127.0.0.1, and drive them with the same commands a user types.
// Every wait polls real processes with a deadline and fails with a message
// naming what did not happen and where its log is.
package tests
