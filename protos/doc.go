// Package protos holds blockgossip's wire messages: blocks, the gossip
// envelope and its messages, the orderer stub's service and the admin
// service. The .proto files are the source; the *.pb.go files are generated
// by scripts/genproto.sh and committed, so that building needs no protoc.
package protos
