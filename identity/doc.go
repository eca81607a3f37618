// Package identity holds everything a blockgossip member needs to say who
// it is and to check who others are: ed25519 keys and x509 certificates, a
// per-organisation CA, an MSP-like validator of remote certificates (chain
// to a trusted org CA, validity window, revocation), signing and
// verification, mutual-TLS configurations, the network description carried
// by the genesis block, and the generation of crypto material on disk.
//
// One ed25519 key and one certificate serve a member both as its gossip
// identity (its PKI-ID is the SHA-256 of the DER certificate) and as its TLS
// certificate, so the transport can bind a stream to a member without a
// second handshake.
//
// # Certificates
//
// A CA certificate is self-signed, IsCA, with KeyUsageCertSign. A member
// certificate carries its name in CommonName, its organisation in
// Organization[0] and its role (peer, orderer, admin, client) in
// OrganizationalUnit[0]; it has KeyUsageDigitalSignature, ExtKeyUsage
// ServerAuth and ClientAuth, SANs for the configured hosts and a random
// 128-bit serial number.
//
// # Layout written by Generate
//
//	DIR/network-description.json         trusted CAs, pinned orderer cert, revoked serials
//	DIR/<org>/ca/ca.crt                  the org CA certificate (PEM)
//	DIR/<org>/ca/ca.key                  the org CA key (PEM PKCS#8, mode 0600)
//	DIR/<org>/<name>/cert.pem            a member certificate
//	DIR/<org>/<name>/key.pem             its key (PEM PKCS#8, mode 0600)
//	DIR/<org>/<name>/ca.crt              a copy of the org CA certificate
//
// Orgs are org1..orgN with peers org1-peer0, org1-peer1, ..., an admin
// org1-admin and a client org1-client each; the orderer org is ordererorg
// with the node orderer and the admin ordererorg-admin. Directories holding
// keys are mode 0700, the others 0755.
//
// Nothing here starts a goroutine; MSP is safe for concurrent use.
package identity
