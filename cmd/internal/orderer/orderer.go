package orderer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blockgossip/blockgossip/identity"
	"github.com/blockgossip/blockgossip/ledger"
	pb "github.com/blockgossip/blockgossip/protos"
	"google.golang.org/grpc"
)

// Errors of the orderer's life cycle.
var (
	// ErrStopped: the cutter is not running (Run returned); transactions
	// can no longer be cut. Restart the orderer.
	ErrStopped = errors.New("orderer stopped")
	// ErrWrongIdentity: the orderer's identity is not the one the network
	// description pins, so peers would reject its blocks.
	ErrWrongIdentity = errors.New("identity is not the orderer pinned in the network description")
	// ErrForeignLedger: the ledger's genesis block belongs to another
	// network (another orderer key).
	ErrForeignLedger = errors.New("ledger belongs to another network")
)

// Orderer is the orderer stub. Its methods are safe for concurrent use.
type Orderer struct {
	cfg    Config
	id     *identity.Identity
	msp    *identity.MSP
	store  ledger.Ledger
	logger *slog.Logger

	cutMu sync.Mutex // serialises block creation (Run's cuts and CutBlock)

	mu       sync.Mutex
	pending  []pendingTx
	newBlock chan struct{} // closed (and replaced) after every cut
	kick     chan struct{} // wakes the cutter; buffered 1
	running  atomic.Bool
	done     chan struct{} // closed when Run returns
}

// pendingTx is a transaction accepted but not yet cut.
type pendingTx struct {
	tx  []byte
	w   *waiter // nil unless the client waits for placements
	idx int     // index in w.placements
}

// waiter collects the placements of one Broadcast request's transactions.
type waiter struct {
	placements []*pb.TxPlacement
	remaining  int
	err        error
	done       chan struct{}
}

// New returns an orderer signing as id for the network net, on store (opened
// with net's orderer verifier). If the ledger is empty it writes the signed
// genesis block: a fresh network has height 1. A nil logger discards.
func New(cfg Config, id *identity.Identity, net *identity.NetworkDescription, store *ledger.Store, logger *slog.Logger) (*Orderer, error) {
	if store == nil {
		return nil, errors.New("orderer: a ledger is required; open one with ledger.Open")
	}
	return newOrderer(cfg, id, net, store, logger)
}

// newOrderer is New on any ledger (tests use ledger.Memory inside synctest
// bubbles, where LevelDB's background goroutines do not belong).
func newOrderer(cfg Config, id *identity.Identity, net *identity.NetworkDescription, store ledger.Ledger, logger *slog.Logger) (*Orderer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if id == nil || net == nil {
		return nil, errors.New("orderer: an identity and a network description are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := checkPinned(id, net); err != nil {
		return nil, err
	}
	msp, err := net.MSP()
	if err != nil {
		return nil, fmt.Errorf("orderer: network description: %w", err)
	}
	o := &Orderer{
		cfg: cfg, id: id, msp: msp, store: store, logger: logger,
		newBlock: make(chan struct{}),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if err := o.ensureGenesis(net); err != nil {
		return nil, err
	}
	return o, nil
}

// checkPinned refuses an identity other than the pinned orderer.
func checkPinned(id *identity.Identity, net *identity.NetworkDescription) error {
	v, err := net.OrdererVerifier()
	if err != nil {
		return fmt.Errorf("orderer: network description: %w", err)
	}
	if !bytes.Equal(v.Key, id.PublicKey()) {
		return fmt.Errorf("orderer: %w: %s (%s) has another key; start the orderer with the certificate and key in the network's orderer directory",
			ErrWrongIdentity, id.Name, id.Org)
	}
	return nil
}

// ensureGenesis writes block 0 on a fresh ledger, or checks that an existing
// one is this network's.
func (o *Orderer) ensureGenesis(net *identity.NetworkDescription) error {
	if o.store.Height() > 0 {
		g, err := o.store.Block(0)
		if err != nil {
			return fmt.Errorf("orderer: read genesis block: %w", err)
		}
		txs := g.GetData().GetTransactions()
		var first *identity.NetworkDescription
		if len(txs) == 1 {
			first, err = identity.ParseNetworkDescription(txs[0])
		}
		if len(txs) != 1 || err != nil || first.OrdererCertPEM != net.OrdererCertPEM {
			return fmt.Errorf("orderer: %w: its genesis block does not pin this orderer; point the orderer at its own ledger directory or remove this one to start a new chain",
				ErrForeignLedger)
		}
		o.logger.Info("orderer resumes its chain", "height", o.store.Height())
		return nil
	}
	desc, err := net.Marshal()
	if err != nil {
		return fmt.Errorf("orderer: encode network description: %w", err)
	}
	if _, _, err := o.cut([][]byte{desc}); err != nil {
		return fmt.Errorf("orderer: write genesis block: %w", err)
	}
	o.logger.Info("orderer wrote the genesis block")
	return nil
}

// Register registers the AtomicBroadcast and Admin services on s, which
// the caller creates with mutual TLS (comm.NewServer) and owns.
func (o *Orderer) Register(s *grpc.Server) {
	pb.RegisterAtomicBroadcastServer(s, &broadcastService{o: o})
	pb.RegisterAdminServer(s, &adminService{o: o})
}

// Height is the number of blocks in the chain, genesis included.
func (o *Orderer) Height() uint64 { return o.store.Height() }

// CutBlock makes the next block of txs at once, bypassing the batch queue,
// and returns it once it is persisted and visible to Deliver streams.
func (o *Orderer) CutBlock(txs [][]byte) (*pb.Block, error) {
	b, _, err := o.cut(txs)
	return b, err
}

// cut builds, signs, persists and publishes the next block, and returns it
// with its number.
func (o *Orderer) cut(txs [][]byte) (*pb.Block, uint64, error) {
	o.cutMu.Lock()
	defer o.cutMu.Unlock()
	tip := o.store.Tip()
	b := ledger.NewBlock(tip.Height, tip.CurrentHash, txs, time.Now().UnixNano())
	ledger.SignBlock(b, o.id.Sign)
	if err := o.store.Append(b); err != nil {
		return nil, 0, fmt.Errorf("orderer: persist block %d: %w", tip.Height, err)
	}
	o.mu.Lock()
	close(o.newBlock)
	o.newBlock = make(chan struct{})
	o.mu.Unlock()
	return b, tip.Height, nil
}

// Run cuts queued transactions into blocks until ctx is done; it then fails
// the Broadcast calls still waiting and ends the Deliver streams, and returns
// nil. It returns an error if the ledger refuses a block (a disk failure):
// the orderer cannot go on. Run may be called once.
func (o *Orderer) Run(ctx context.Context) error {
	if !o.running.CompareAndSwap(false, true) {
		return errors.New("orderer: Run called twice")
	}
	err := o.cutLoop(ctx)
	o.mu.Lock()
	for _, p := range o.pending {
		if p.w != nil {
			p.w.fail(ErrStopped)
		}
	}
	o.pending = nil
	close(o.done)
	o.mu.Unlock()
	return err
}

func (o *Orderer) cutLoop(ctx context.Context) error {
	timer := time.NewTimer(o.cfg.BatchTimeout)
	timer.Stop()
	armed := false
	expired := false
	for {
		for {
			batch := o.takeBatch(expired)
			expired = false
			if batch == nil {
				break
			}
			if err := o.cutBatch(batch); err != nil {
				return err
			}
			armed = false // a new batch starts: its timeout counts from now
			timer.Stop()
		}
		o.mu.Lock()
		waiting := len(o.pending) > 0
		o.mu.Unlock()
		if waiting && !armed {
			timer.Reset(o.cfg.BatchTimeout)
			armed = true
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-o.kick:
		case <-timer.C:
			armed, expired = false, true
		}
	}
}

// takeBatch removes the next batch from the queue if it is full, or, when
// force, whatever waits (up to the limits).
func (o *Orderer) takeBatch(force bool) []pendingTx {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, size := 0, 0
	for n < len(o.pending) && n < o.cfg.BatchMaxTx {
		l := len(o.pending[n].tx)
		if n > 0 && size+l > o.cfg.BatchMaxBytes {
			break
		}
		size += l
		n++
	}
	full := n == o.cfg.BatchMaxTx || n < len(o.pending) || size >= o.cfg.BatchMaxBytes
	if n == 0 || !(full || force) {
		return nil
	}
	batch := o.pending[:n:n]
	o.pending = o.pending[n:]
	return batch
}

// cutBatch cuts batch into a block and tells its waiters where each
// transaction landed.
func (o *Orderer) cutBatch(batch []pendingTx) error {
	txs := make([][]byte, len(batch))
	for i, p := range batch {
		txs[i] = p.tx
	}
	_, num, err := o.cut(txs)
	if err != nil {
		o.logger.Error("orderer cannot persist blocks; stopping", "err", err)
		for _, p := range batch {
			if p.w != nil {
				p.w.fail(err)
			}
		}
		return err
	}
	for i, p := range batch {
		if p.w != nil {
			p.w.place(p.idx, num, i)
		}
	}
	return nil
}

// enqueue queues txs for cutting; w may be nil.
func (o *Orderer) enqueue(txs [][]byte, w *waiter) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	select {
	case <-o.done:
		return ErrStopped
	default:
	}
	if len(o.pending)+len(txs) > o.cfg.MaxPendingTxs {
		return errBusy
	}
	for i, tx := range txs {
		o.pending = append(o.pending, pendingTx{tx: tx, w: w, idx: i})
	}
	select {
	case o.kick <- struct{}{}:
	default:
	}
	return nil
}

var errBusy = errors.New("too many transactions waiting to be cut; retry later")

func newWaiter(n int) *waiter {
	return &waiter{placements: make([]*pb.TxPlacement, n), remaining: n, done: make(chan struct{})}
}

// place and fail are only called on Run's goroutine (the cutter, then Run's
// exit); the Broadcast handler reads the waiter after done is closed.
func (w *waiter) place(idx int, block uint64, pos int) {
	w.placements[idx] = &pb.TxPlacement{BlockNumber: block, Index: uint32(pos)}
	w.remaining--
	if w.remaining == 0 {
		close(w.done)
	}
}

func (w *waiter) fail(err error) {
	if w.err != nil || w.remaining == 0 {
		return
	}
	w.err = err
	close(w.done)
}
