package comm

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/blockgossip/blockgossip/identity"
)

// NewServer returns a gRPC server that requires mutual TLS with a client
// certificate the MSP accepts (identity.ServerTLSConfig), enforces the
// message-size, stream and keepalive limits of cfg, and adds extra. The
// node owns it: it registers services (GRPC.Register, admin, orderer),
// calls Serve and finally Stop.
func NewServer(cfg Config, self *identity.Identity, msp *identity.MSP, extra ...grpc.ServerOption) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(identity.ServerTLSConfig(self, msp))),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.ConnectionTimeout(cfg.ConnectTimeout),
		grpc.InitialWindowSize(cfg.WindowBytes),
		grpc.InitialConnWindowSize(2 * cfg.WindowBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    cfg.KeepaliveTime,
			Timeout: cfg.KeepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             cfg.KeepaliveMinTime,
			PermitWithoutStream: true,
		}),
	}
	return grpc.NewServer(append(opts, extra...)...)
}

// DialOptions are the options every blockgossip client dials with: mutual
// TLS presenting self and accepting only servers the MSP validates
// (identity.ClientTLSConfig), the message-size limits and keepalive of
// cfg. The gossip transport, the deliver client and the admin client all
// use them.
func DialOptions(cfg Config, self *identity.Identity, msp *identity.MSP) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(identity.ClientTLSConfig(self, msp))),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(cfg.MaxMessageBytes),
			grpc.MaxCallSendMsgSize(cfg.MaxMessageBytes),
		),
		grpc.WithInitialWindowSize(cfg.WindowBytes),
		grpc.WithInitialConnWindowSize(2 * cfg.WindowBytes),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                cfg.KeepaliveTime,
			Timeout:             cfg.KeepaliveTimeout,
			PermitWithoutStream: true,
		}),
	}
}
