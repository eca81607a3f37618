// Package tests holds blockgossip's multi-process integration suites: they
// build the real binary, start real orderer and peer processes over mutual
// TLS on 127.0.0.1, and drive them with the same commands a user types.
// Every wait polls real processes with a deadline and fails with a message
// naming what did not happen and where its log is.
//
// The fault suite is behind the build tag faults (about 2 minutes):
//
//	go test -race -tags faults -v -run . ./tests/
//
// It kills peers, leaders and the orderer with SIGKILL, stops a peer with
// SIGSTOP beyond the alive expiration, fills a peer's ledger disk (a tmpfs;
// needs root), partitions peers by cutting TCP in a proxy every peer is
// made to announce, refuses foreign-CA, expired and revoked clients, and
// runs a hostile member with valid credentials. Each scenario ends with
// every live peer at the orderer's height and tip hash, and logs a line
// starting with RECOVERY: the time from the fault lifted to that point.
// FAULTS_SEED picks the random victims (default 1).
package tests
