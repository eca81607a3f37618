package orderer

import (
	"context"
	"errors"

	"github.com/blockgossip/blockgossip/identity"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// broadcastService and adminService are separate types because the two
// generated Unimplemented*Server structs cannot both be embedded in one.
type broadcastService struct {
	pb.UnimplementedAtomicBroadcastServer
	o *Orderer
}

type adminService struct {
	pb.UnimplementedAdminServer
	o *Orderer
}

// authorize returns the member calling, as its TLS client certificate says,
// checked by the MSP now (so a revocation applies to open connections).
func (o *Orderer) authorize(ctx context.Context) (*identity.Member, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no peer information: connect with mutual TLS")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "not a TLS connection: connect with mutual TLS and a member certificate")
	}
	m, err := o.msp.PeerMember(info.State)
	if err != nil {
		return nil, status.Errorf(codes.PermissionDenied, "client certificate refused: %v", err)
	}
	return m, nil
}

// Broadcast accepts transactions for ordering. With wait_for_blocks it
// answers once every transaction is in a persisted block, saying where.
func (s *broadcastService) Broadcast(ctx context.Context, req *pb.SubmitRequest) (*pb.SubmitResponse, error) {
	o := s.o
	m, err := o.authorize(ctx)
	if err != nil {
		return nil, err
	}
	txs := req.GetTransactions()
	if len(txs) > o.cfg.MaxTxsPerRequest {
		return nil, status.Errorf(codes.InvalidArgument, "%d transactions in one request; send at most %d per request", len(txs), o.cfg.MaxTxsPerRequest)
	}
	for i, tx := range txs {
		if len(tx) == 0 || len(tx) > o.cfg.MaxTxBytes {
			return nil, status.Errorf(codes.InvalidArgument, "transaction %d has %d bytes; each must have 1 to %d", i, len(tx), o.cfg.MaxTxBytes)
		}
	}
	if len(txs) == 0 {
		return &pb.SubmitResponse{}, nil
	}
	var w *waiter
	if req.GetWaitForBlocks() {
		w = newWaiter(len(txs))
	}
	switch err := o.enqueue(txs, w); {
	case errors.Is(err, errBusy):
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "%v: retry on a running orderer", err)
	}
	o.logger.Debug("transactions accepted", "from", m.Name, "org", m.Org, "count", len(txs))
	resp := &pb.SubmitResponse{Accepted: uint32(len(txs))}
	if w == nil {
		return resp, nil
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		// The transactions stay queued; only the answer is lost.
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if w.err != nil {
		return nil, status.Errorf(codes.Unavailable, "transactions accepted but not all cut: %v", w.err)
	}
	resp.Placements = w.placements
	return resp, nil
}

// Deliver streams blocks from req.start, then follows new blocks as they are
// cut, until the client goes away, the optional stop block is sent, or the
// orderer stops.
func (s *broadcastService) Deliver(req *pb.DeliverRequest, stream pb.AtomicBroadcast_DeliverServer) error {
	o := s.o
	ctx := stream.Context()
	if _, err := o.authorize(ctx); err != nil {
		return err
	}
	next := req.GetStart()
	for {
		if req.GetHasStop() && next > req.GetStopAfter() {
			return nil
		}
		// Take the notification channel before reading the height, so a
		// block cut in between still wakes us.
		o.mu.Lock()
		notify := o.newBlock
		o.mu.Unlock()
		end := o.store.Height()
		if req.GetHasStop() && req.GetStopAfter() < end {
			end = req.GetStopAfter() + 1
		}
		if next < end {
			blocks, err := o.store.Range(next, end, o.cfg.DeliverChunkBytes)
			if err != nil {
				return status.Errorf(codes.Internal, "read blocks from %d: %v", next, err)
			}
			for _, b := range blocks {
				if err := stream.Send(&pb.DeliverResponse{Block: b}); err != nil {
					return err
				}
				next++
			}
			continue
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-o.done:
			return status.Error(codes.Unavailable, "orderer stopping: reconnect to another orderer or retry later")
		}
	}
}

// LedgerInfo reports the orderer's chain height and tip hashes.
func (s *adminService) LedgerInfo(ctx context.Context, _ *pb.LedgerInfoRequest) (*pb.LedgerInfoResponse, error) {
	o := s.o
	if _, err := o.authorize(ctx); err != nil {
		return nil, err
	}
	tip := o.store.Tip()
	return &pb.LedgerInfoResponse{
		Height:            tip.Height,
		CurrentBlockHash:  tip.CurrentHash,
		PreviousBlockHash: tip.PreviousHash,
		Name:              o.id.Name,
		Org:               o.id.Org,
	}, nil
}
