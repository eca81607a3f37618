package gossip

import (
	"bytes"
	"fmt"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
)

// pending is a verified block waiting in the reorder buffer for its
// predecessors.
type pending struct {
	block ledger.Verified
	hash  [32]byte
	via   Via
	hops  uint32
	from  identity.PKIID // who sent the copy (ourselves when injected)
}

// pipeline is the path of a block: dedupe -> verify -> forward -> reorder
// buffer -> commit in order.
type pipeline struct {
	store    *msgStore
	buffer   map[uint64]pending
	height   uint64
	tip      []byte // hash of block height-1; nil for an empty ledger
	offences map[identity.PKIID]int
	banned   map[identity.PKIID]uint64 // id -> tick the ban ends
}

func (pl *pipeline) init(cfg Config, l Ledger) error {
	pl.store = newMsgStore(cfg.StoreSize, uint64(cfg.StoreTTL))
	pl.buffer = make(map[uint64]pending)
	pl.offences = make(map[identity.PKIID]int)
	pl.banned = make(map[identity.PKIID]uint64)
	pl.height = l.Height()
	if pl.height > 0 {
		b, err := l.Block(pl.height - 1)
		if err != nil {
			return fmt.Errorf("read ledger tip (block %d): %w", pl.height-1, err)
		}
		pl.tip = ledger.HeaderHash(b)
	}
	return nil
}

// Height is the ledger height as this Peer last committed it.
func (p *Peer) Height() uint64 { return p.height }

// TipHash is the hash of the last committed block (nil if none).
func (p *Peer) TipHash() []byte { return p.tip }

// Have reports whether block n is committed or verified and buffered.
func (p *Peer) Have(n uint64) bool {
	if n < p.height {
		return true
	}
	_, ok := p.buffer[n]
	return ok
}

// Block returns block n if committed or verified and buffered.
func (p *Peer) Block(n uint64) (*pb.Block, bool) {
	if n < p.height {
		b, err := p.ledger.Block(n)
		return b, err == nil && b != nil
	}
	e, ok := p.buffer[n]
	return e.block.Block(), ok
}

func (p *Peer) isBanned(id identity.PKIID) bool {
	until, ok := p.banned[id]
	return ok && p.now < until
}

func (p *Peer) tickPipeline() {
	p.store.expire(p.now)
	var ended []identity.PKIID
	for id, until := range p.banned {
		if p.now >= until {
			ended = append(ended, id)
		}
	}
	sortIDs(ended)
	for _, id := range ended {
		delete(p.banned, id)
		p.syncLive(id)
	}
}

// handleBlock runs one block through the pipeline. from is the sender
// (self for an injected block). w, when not zero, holds the bytes b was
// decoded from (ledger.DecodeBlock): b is forwarded and committed as them.
func (p *Peer) handleBlock(from identity.PKIID, b *pb.Block, w wireBlock, via Via, hops uint32) error {
	hdr, err := ledger.ParseHeader(b)
	if err != nil {
		p.reject(from, 0, via, err)
		return err
	}
	n := hdr.GetNumber()
	if n < p.height {
		p.duplicate(from, blockKey{number: n, hash: [32]byte(ledger.HeaderHash(b))}, via, hops, w.stamp)
		return fmt.Errorf("block %d (height %d): %w", n, p.height, ErrDuplicateBlock)
	}
	key := blockKey{number: n, hash: [32]byte(ledger.HeaderHash(b))}
	if e, ok := p.buffer[n]; ok && e.hash == key.hash {
		p.duplicate(from, key, via, hops, w.stamp)
		return fmt.Errorf("block %d: %w", n, ErrDuplicateBlock)
	}
	inWindow := n < p.height+uint64(p.cfg.ReorderWindow)
	seen := p.store.has(key)
	if seen && !inWindow {
		p.duplicate(from, key, via, hops, w.stamp)
		return fmt.Errorf("block %d: %w", n, ErrDuplicateBlock)
	}
	// Verify before anything else leaves or stays: the key is only the
	// header hash, so a copy with the right header and forged transactions
	// must fail here, not be taken for a duplicate.
	vb, err := p.verify(b, w)
	if err != nil {
		p.reject(from, n, via, err)
		return err
	}
	if !seen {
		p.store.add(key, p.now)
		p.tracer.BlockAccepted(from, n, via, hops)
		switch {
		case via != ViaPush && via != ViaOrderer:
			if p.cfg.Tree {
				p.notePulled(n)
				p.relinkOrphan()
			}
		case p.cfg.Tree:
			p.treeForward(from, key, b, w, hops)
		default:
			p.forward(from, n, b, w, hops)
		}
	}
	if !inWindow {
		err := fmt.Errorf("block %d, height %d, window %d: %w", n, p.height, p.cfg.ReorderWindow, ErrBeyondWindow)
		p.tracer.BlockDropped(n, err)
		return err
	}
	if _, ok := p.buffer[n]; ok {
		// Another valid block with the same number: the orderer signed two.
		// Keep the first; linkage at commit decides.
		p.tracer.BlockDuplicate(from, n, via)
		return fmt.Errorf("block %d (second version): %w", n, ErrDuplicateBlock)
	}
	p.buffer[n] = pending{block: vb, hash: key.hash, via: via, hops: hops, from: from}
	p.pullFarGap(n)
	return p.commitReady()
}

// duplicate counts a copy of a block we already have; in tree mode it
// prunes the eager link that brought it.
func (p *Peer) duplicate(from identity.PKIID, key blockKey, via Via, hops uint32, stamp uint64) {
	p.tracer.BlockDuplicate(from, key.number, via)
	if p.cfg.Tree && via == ViaPush {
		p.treeDuplicate(from, key, hops, stamp)
	}
}

// commitReady commits the buffered blocks that extend the ledger.
func (p *Peer) commitReady() error {
	var firstErr error
	for {
		e, ok := p.buffer[p.height]
		if !ok {
			break
		}
		delete(p.buffer, p.height)
		if prev := e.block.Header().GetPreviousHash(); !bytes.Equal(prev, p.tip) {
			err := fmt.Errorf("block %d: previous hash %x, tip %x: %w", p.height, prev, p.tip, ErrBrokenChain)
			p.tracer.BlockRejected(p.self.ID, p.height, e.via, err)
			firstErr = cmpErr(firstErr, err)
			break
		}
		if err := p.commit(e.block); err != nil {
			err = fmt.Errorf("commit block %d: %w", p.height, err)
			p.tracer.BlockRejected(p.self.ID, p.height, e.via, err)
			firstErr = cmpErr(firstErr, err)
			break
		}
		p.height++
		p.tip = e.hash[:]
		p.out.Commits = append(p.out.Commits, Commit{
			Number: p.height - 1, Hash: p.tip, Via: e.via, Hops: e.hops, From: e.from,
			CutTimeUnixNano: e.block.Block().GetMetadata().GetCutTimeUnixNano(),
		})
		p.tracer.BlockCommitted(p.height-1, e.via, e.hops)
	}
	p.onCommitted()
	return firstErr
}

// verify checks b, keeping its encoding for the ledger when w holds it.
func (p *Peer) verify(b *pb.Block, w wireBlock) (ledger.Verified, error) {
	if w.enc.Bytes() != nil {
		return ledger.VerifyEncoded(w.enc, p.orderV)
	}
	return ledger.Verify(b, p.orderV)
}

// verifiedAppender is a Ledger that can commit a block we verified
// without verifying it again (ledger.Store and ledger.Memory): the second
// data hash and signature check were 7% of the CPU of a 100-peer bench.
type verifiedAppender interface {
	AppendVerified(vb ledger.Verified) error
}

// commit appends vb to the ledger, without a second verification where
// the ledger allows it.
func (p *Peer) commit(vb ledger.Verified) error {
	if va, ok := p.ledger.(verifiedAppender); ok {
		return va.AppendVerified(vb)
	}
	return p.ledger.Append(vb.Block())
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// reject counts a block that failed verification against its sender.
func (p *Peer) reject(from identity.PKIID, n uint64, via Via, err error) {
	p.tracer.BlockRejected(from, n, via, err)
	if from == p.self.ID {
		return // our own orderer feed: the caller gets the error
	}
	p.penalise(from)
	p.rejectedPull(from, via)
}

// penalise counts an offence; at MaxOffences the peer is banned for
// BanTicks and its stream closed.
func (p *Peer) penalise(id identity.PKIID) {
	p.offences[id]++
	n := p.offences[id]
	banned := n >= p.cfg.MaxOffences
	if banned {
		delete(p.offences, id)
		p.banned[id] = p.now + uint64(p.cfg.BanTicks)
		p.syncLive(id)
		p.out.Disconnect = append(p.out.Disconnect, id)
	}
	p.tracer.PeerPenalised(id, n, banned)
}

// Offences returns how many invalid blocks id has sent since its last ban.
func (p *Peer) Offences(id identity.PKIID) int { return p.offences[id] }

// IsBanned reports whether id is currently ignored.
func (p *Peer) IsBanned(id identity.PKIID) bool { return p.isBanned(id) }
