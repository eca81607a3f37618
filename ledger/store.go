package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"

	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/syndtr/goleveldb/leveldb"
	lverrors "github.com/syndtr/goleveldb/leveldb/errors"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// Key layout. Every committed block writes all three in one batch.
//
//	'b' + number (8 bytes, big endian) -> marshalled pb.Block
//	'h' + header hash (32 bytes)       -> number (8 bytes, big endian)
//	't'                                 -> tip record (see encodeTip)
const (
	prefixBlock = 'b'
	prefixHash  = 'h'
)

var keyTip = []byte{'t'}

func blockKey(n uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixBlock
	binary.BigEndian.PutUint64(k[1:], n)
	return k
}

func hashKey(h []byte) []byte { return append([]byte{prefixHash}, h...) }

func encodeNumber(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// encodeTip: height (8 bytes) | current hash (32) | previous hash (0 or 32).
func encodeTip(t TipInfo) []byte {
	v := binary.BigEndian.AppendUint64(nil, t.Height)
	v = append(v, t.CurrentHash...)
	return append(v, t.PreviousHash...)
}

func decodeTip(v []byte) (TipInfo, error) {
	if len(v) != 8+32 && len(v) != 8+64 {
		return TipInfo{}, fmt.Errorf("tip record has %d bytes, want 40 or 72", len(v))
	}
	t := TipInfo{
		Height:       binary.BigEndian.Uint64(v),
		CurrentHash:  bytes.Clone(v[8:40]),
		PreviousHash: bytes.Clone(v[40:]),
	}
	if t.Height == 0 {
		return TipInfo{}, errors.New("tip record has height 0")
	}
	if len(t.PreviousHash) == 0 {
		t.PreviousHash = nil
	}
	return t, nil
}

// Config tunes the LevelDB underneath a Store. Durability is not a knob:
// every Append is synced.
type Config struct {
	// BlockCacheBytes is LevelDB's cache of uncompressed table blocks.
	BlockCacheBytes int
	// WriteBufferBytes is how much is buffered in memory (and in the
	// journal) before it is flushed to a sorted table.
	WriteBufferBytes int
	// Compression compresses tables with snappy.
	Compression bool
}

// DefaultConfig suits a peer receiving blocks of up to a few MiB.
func DefaultConfig() Config {
	return Config{
		BlockCacheBytes:  8 << 20,  // peers mostly serve recent blocks, which are usually still cached
		WriteBufferBytes: 16 << 20, // holds a dozen 1 MiB blocks between flushes, fewer small tables
		Compression:      true,     // snappy is cheap and gives up quickly on incompressible data
	}
}

// Validate reports a setting LevelDB cannot work with.
func (c Config) Validate() error {
	if c.BlockCacheBytes < 0 {
		return fmt.Errorf("ledger: BlockCacheBytes is %d; use 0 for LevelDB's default or a positive size", c.BlockCacheBytes)
	}
	if c.WriteBufferBytes < 0 {
		return fmt.Errorf("ledger: WriteBufferBytes is %d; use 0 for LevelDB's default or a positive size", c.WriteBufferBytes)
	}
	return nil
}

func (c Config) options() *opt.Options {
	o := &opt.Options{
		BlockCacheCapacity: c.BlockCacheBytes,
		WriteBuffer:        c.WriteBufferBytes,
	}
	if !c.Compression {
		o.Compression = opt.NoCompression
	}
	return o
}

var syncWrite = &opt.WriteOptions{Sync: true}

// Store is a Ledger kept in LevelDB. It is safe for concurrent use; only
// one Store (in any process) may have a directory open at a time.
type Store struct {
	dir string
	db  *leveldb.DB
	v   BlockVerifier

	appendMu sync.Mutex // serialises Append, held across the synced write

	mu       sync.RWMutex // guards tip, closed and writeErr
	tip      TipInfo
	closed   bool
	writeErr error // the last failed commit's error; nil after a commit succeeds
}

// Open opens (creating if needed) the ledger in dir with DefaultConfig,
// checking blocks with v (the orderer's verifier from the network
// description).
func Open(dir string, v BlockVerifier) (*Store, error) {
	return OpenWithConfig(dir, v, DefaultConfig())
}

// OpenWithConfig is Open with explicit LevelDB settings. It resumes at the
// last committed block, after checking that the tip record and the block it
// names agree.
func OpenWithConfig(dir string, v BlockVerifier, cfg Config) (*Store, error) {
	if v == nil {
		return nil, fmt.Errorf("ledger: open %s: %w; pass the orderer's verifier from the network description", dir, ErrNoVerifier)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db, err := leveldb.OpenFile(dir, cfg.options())
	if err != nil {
		return nil, openError(dir, err)
	}
	s := &Store{dir: dir, db: db, v: v}
	if err := s.loadTip(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openError turns a LevelDB open failure into one that says what to do.
func openError(dir string, err error) error {
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN):
		return fmt.Errorf("%w: %s is in use by another blockgossip process (or another Open in this one); stop it first or use another directory", ErrLocked, dir)
	case lverrors.IsCorrupted(err):
		return corrupted(dir, err.Error())
	}
	return fmt.Errorf("ledger: open %s: %v", dir, err)
}

// corrupted builds an ErrCorrupted that names dir and the way out.
func corrupted(dir, why string) error {
	return fmt.Errorf("%w: %s: %s; run `blockgossip ledger verify --dir %s` to find the first bad block, "+
		"then restore the ledger from a backup, or remove the directory to re-sync from peers", ErrCorrupted, dir, why, dir)
}

// loadTip reads the tip record and checks it against the block it names.
func (s *Store) loadTip() error {
	raw, err := s.db.Get(keyTip, nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		// Fresh ledger: nothing may be stored without a tip record.
		it := s.db.NewIterator(nil, nil)
		defer it.Release()
		if it.First() {
			return corrupted(s.dir, "blocks or indexes are stored but there is no tip record")
		}
		return nil
	}
	if err != nil {
		return s.dbError("read tip", err)
	}
	tip, err := decodeTip(raw)
	if err != nil {
		return corrupted(s.dir, err.Error())
	}
	last := tip.Height - 1
	b, err := s.block(last)
	if errors.Is(err, ErrNotFound) {
		return corrupted(s.dir, fmt.Sprintf("the tip record says block %d is the last one, but it is missing", last))
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(HeaderHash(b), tip.CurrentHash) {
		return corrupted(s.dir, fmt.Sprintf("block %d does not have the hash the tip record names", last))
	}
	h, err := ParseHeader(b)
	if err != nil || h.GetNumber() != last || !bytes.Equal(h.GetPreviousHash(), tip.PreviousHash) {
		return corrupted(s.dir, fmt.Sprintf("block %d's header disagrees with the tip record", last))
	}
	if ok, _ := s.db.Has(blockKey(tip.Height), nil); ok {
		return corrupted(s.dir, fmt.Sprintf("block %d is stored beyond the tip (height %d)", tip.Height, tip.Height))
	}
	s.tip = tip
	return nil
}

// dbError maps a LevelDB error to ErrClosed, ErrCorrupted or a plain error.
func (s *Store) dbError(op string, err error) error {
	switch {
	case errors.Is(err, leveldb.ErrClosed):
		return ErrClosed
	case lverrors.IsCorrupted(err):
		return corrupted(s.dir, op+": "+err.Error())
	}
	return fmt.Errorf("ledger %s: %s: %v", s.dir, op, err)
}

// Dir returns the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

// Append implements Ledger. It returns once the block is on disk (synced).
func (s *Store) Append(b *pb.Block) error {
	return s.commit(func(tip TipInfo) (accepted, error) { return prepare(b, tip, s.v) })
}

// AppendVerified implements Ledger. It returns once the block is on disk
// (synced).
func (s *Store) AppendVerified(vb Verified) error {
	return s.commit(func(tip TipInfo) (accepted, error) { return prepareVerified(vb, tip) })
}

// commit writes the block prepare accepts against the current tip.
func (s *Store) commit(prepare func(TipInfo) (accepted, error)) error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.RLock()
	tip, closed := s.tip, s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	a, err := prepare(tip)
	if err != nil {
		return err
	}
	batch := new(leveldb.Batch)
	batch.Put(blockKey(a.number), a.raw)
	batch.Put(hashKey(a.tip.CurrentHash), encodeNumber(a.number))
	batch.Put(keyTip, encodeTip(a.tip))
	if err := s.db.Write(batch, syncWrite); err != nil {
		err = s.dbError(fmt.Sprintf("commit block %d", a.number), err)
		s.mu.Lock()
		s.writeErr = err
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.tip = a.tip
	s.writeErr = nil
	s.mu.Unlock()
	return nil
}

// Err returns the error of the last commit that failed to reach the disk
// (a full disk, an I/O error), or nil once a later commit succeeds. Health
// checks report it: a ledger that cannot be written is still readable, so
// reading the tip back does not show the fault.
func (s *Store) Err() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.writeErr
}

// Height implements Ledger.
func (s *Store) Height() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tip.Height
}

// Tip implements Ledger.
func (s *Store) Tip() TipInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tip.clone()
}

// state returns the height, or ErrClosed.
func (s *Store) state() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.tip.Height, nil
}

// Block implements Ledger.
func (s *Store) Block(number uint64) (*pb.Block, error) {
	height, err := s.state()
	if err != nil {
		return nil, err
	}
	if number >= height {
		return nil, fmt.Errorf("block %d: %w: ledger height is %d", number, ErrNotFound, height)
	}
	return s.block(number)
}

// block reads a stored block without looking at the tip.
func (s *Store) block(number uint64) (*pb.Block, error) {
	raw, err := s.db.Get(blockKey(number), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, fmt.Errorf("block %d: %w", number, ErrNotFound)
	}
	if err != nil {
		return nil, s.dbError(fmt.Sprintf("read block %d", number), err)
	}
	b, err := unmarshalBlock(raw)
	if err != nil {
		return nil, corrupted(s.dir, fmt.Sprintf("block %d does not decode: %v", number, err))
	}
	return b, nil
}

// BlockByHash implements Ledger.
func (s *Store) BlockByHash(hash []byte) (*pb.Block, error) {
	height, err := s.state()
	if err != nil {
		return nil, err
	}
	v, err := s.db.Get(hashKey(hash), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, fmt.Errorf("block with hash %s: %w", shortHash(hash), ErrNotFound)
	}
	if err != nil {
		return nil, s.dbError("read hash index", err)
	}
	if len(v) != 8 {
		return nil, corrupted(s.dir, fmt.Sprintf("hash index entry for %s has %d bytes, want 8", shortHash(hash), len(v)))
	}
	n := binary.BigEndian.Uint64(v)
	if n >= height {
		return nil, corrupted(s.dir, fmt.Sprintf("hash index points at block %d beyond the height %d", n, height))
	}
	b, err := s.block(n)
	if errors.Is(err, ErrNotFound) {
		return nil, corrupted(s.dir, fmt.Sprintf("hash index points at block %d, which is missing", n))
	}
	return b, err
}

// Range implements Ledger. It reads with one LevelDB iterator.
func (s *Store) Range(start, end uint64, maxBytes int) ([]*pb.Block, error) {
	height, err := s.state()
	if err != nil {
		return nil, err
	}
	end, err = rangeEnd(start, end, height)
	if err != nil || end <= start {
		return nil, err
	}
	it := s.db.NewIterator(&util.Range{Start: blockKey(start), Limit: blockKey(end)}, nil)
	defer it.Release()
	var out []*pb.Block
	total := 0
	for want := start; want < end; want++ {
		if !it.Next() {
			if err := it.Error(); err != nil {
				return nil, s.dbError(fmt.Sprintf("read block %d", want), err)
			}
			return nil, corrupted(s.dir, fmt.Sprintf("block %d is missing below the height %d", want, height))
		}
		if !bytes.Equal(it.Key(), blockKey(want)) {
			return nil, corrupted(s.dir, fmt.Sprintf("block %d is missing below the height %d", want, height))
		}
		raw := it.Value()
		if !fits(total, len(raw), len(out), maxBytes) {
			break
		}
		b, err := unmarshalBlock(raw)
		if err != nil {
			return nil, corrupted(s.dir, fmt.Sprintf("block %d does not decode: %v", want, err))
		}
		out = append(out, b)
		total += len(raw)
	}
	return out, nil
}

// Close implements Ledger. An Append in flight finishes (commits or
// fails) first.
func (s *Store) Close() error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("ledger %s: close: %v", s.dir, err)
	}
	return nil
}
