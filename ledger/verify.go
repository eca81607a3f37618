package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/opt"
)

// VerifyChain re-checks the ledger in dir offline, block by block from
// genesis: each block decodes, has the number of its key, links to its
// predecessor, has a matching data hash and a valid orderer signature, and
// is indexed under its hash; finally the tip record must name the last
// block. verifierFromGenesis builds the verifier from block 0 (or returns
// the one pinned in the network description). progress, if not nil, is
// called after each block with done blocks out of total.
//
// It opens dir read-only, so it fails with ErrLocked while a peer is using
// the ledger. It returns the number of good blocks from genesis; when a
// block is bad the error is a *ChainError naming it, and height is its
// number.
func VerifyChain(dir string, verifierFromGenesis func(genesis *pb.Block) (BlockVerifier, error),
	progress func(done, total uint64)) (height uint64, err error) {
	if verifierFromGenesis == nil {
		return 0, fmt.Errorf("ledger verify: %w; pass a function returning the orderer's verifier", ErrNoVerifier)
	}
	if _, err := os.Stat(dir); err != nil {
		return 0, fmt.Errorf("ledger verify: %v; pass the directory of an existing ledger", err)
	}
	db, err := leveldb.OpenFile(dir, &opt.Options{ReadOnly: true, ErrorIfMissing: true})
	if err != nil {
		return 0, openError(dir, err)
	}
	defer db.Close()

	raw, err := db.Get(keyTip, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		it := db.NewIterator(nil, nil)
		defer it.Release()
		if it.First() {
			return 0, corrupted(dir, "blocks or indexes are stored but there is no tip record")
		}
		return 0, nil // empty ledger
	}
	if err != nil {
		return 0, fmt.Errorf("ledger verify %s: read tip: %v", dir, err)
	}
	tipRec, err := decodeTip(raw)
	if err != nil {
		return 0, corrupted(dir, err.Error())
	}

	var (
		v   BlockVerifier
		tip TipInfo // running tip of the verified prefix
	)
	for n := range tipRec.Height {
		b, err := verifyStored(db, n, tip, &v, verifierFromGenesis)
		if err != nil {
			return n, &ChainError{Number: n, Err: err}
		}
		tip = TipInfo{Height: n + 1, CurrentHash: HeaderHash(b), PreviousHash: tip.CurrentHash}
		if progress != nil {
			progress(n+1, tipRec.Height)
		}
	}
	last := tipRec.Height - 1
	if !bytes.Equal(tip.CurrentHash, tipRec.CurrentHash) || !bytes.Equal(tip.PreviousHash, tipRec.PreviousHash) {
		return last, &ChainError{Number: last, Err: fmt.Errorf("%w: the tip record does not match block %d's hashes", ErrCorrupted, last)}
	}
	if ok, _ := db.Has(blockKey(tipRec.Height), nil); ok {
		return tipRec.Height, &ChainError{Number: tipRec.Height,
			Err: fmt.Errorf("%w: stored beyond the tip record's height %d", ErrCorrupted, tipRec.Height)}
	}
	return tipRec.Height, nil
}

// verifyStored checks stored block n against the verified prefix tip. For
// block 0 it first builds *v with verifierFromGenesis.
func verifyStored(db *leveldb.DB, n uint64, tip TipInfo, v *BlockVerifier,
	verifierFromGenesis func(*pb.Block) (BlockVerifier, error)) (*pb.Block, error) {
	raw, err := db.Get(blockKey(n), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, fmt.Errorf("%w: missing below the tip", ErrCorrupted)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: unreadable: %v", ErrCorrupted, err)
	}
	b, err := unmarshalBlock(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: stored bytes do not decode: %v", ErrCorrupted, err)
	}
	if n == 0 {
		if *v, err = verifierFromGenesis(b); err != nil {
			return nil, fmt.Errorf("cannot build the orderer verifier from the genesis block: %w", err)
		}
	}
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if h.GetNumber() != n {
		return nil, fmt.Errorf("%w: stored under number %d but its header says %d", ErrWrongNumber, n, h.GetNumber())
	}
	if err := checkLink(h, tip); err != nil {
		return nil, err
	}
	if err := verifyContent(b, h, *v); err != nil {
		return nil, err
	}
	idx, err := db.Get(hashKey(HeaderHash(b)), nil)
	if err != nil || len(idx) != 8 || binary.BigEndian.Uint64(idx) != n {
		return nil, fmt.Errorf("%w: the hash index does not point at this block", ErrCorrupted)
	}
	return b, nil
}
