package ledger

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
	"google.golang.org/protobuf/proto"
)

// newStore returns a store in a temporary dir holding n blocks.
func newStore(t *testing.T, o orderer, n int) (dir string, blocks []*pb.Block) {
	t.Helper()
	dir = t.TempDir()
	s, err := Open(dir, o.v)
	require.NoError(t, err)
	blocks = o.chain(rand.New(rand.NewPCG(10, uint64(n))), n)
	appendAll(t, s, blocks)
	require.NoError(t, s.Close())
	return dir, blocks
}

// rawDB edits a closed ledger directly, as disk damage or a bug would.
func rawDB(t *testing.T, dir string, edit func(db *leveldb.DB)) {
	t.Helper()
	db, err := leveldb.OpenFile(dir, nil)
	require.NoError(t, err)
	edit(db)
	require.NoError(t, db.Close())
}

func requireCorrupted(t *testing.T, err error, dir string) {
	t.Helper()
	require.ErrorIs(t, err, ErrCorrupted)
	require.Contains(t, err.Error(), dir)
	require.Contains(t, err.Error(), "blockgossip ledger verify --dir "+dir)
	require.Contains(t, err.Error(), "re-sync from peers")
}

func TestStoreReopenResumesAtTip(t *testing.T) {
	o := newOrderer(1)
	dir, blocks := newStore(t, o, 5)
	s, err := Open(dir, o.v)
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, uint64(5), s.Height())
	require.Equal(t, TipInfo{Height: 5, CurrentHash: HeaderHash(blocks[4]), PreviousHash: HeaderHash(blocks[3])}, s.Tip())
	require.ErrorIs(t, s.Append(blocks[4]), ErrWrongNumber, "a committed block is not accepted twice after reopen")
	require.NoError(t, s.Append(o.next(rand.New(rand.NewPCG(1, 1)), s)))
	require.Equal(t, uint64(6), s.Height())
	require.Equal(t, dir, s.Dir())
}

func TestStoreLocked(t *testing.T) {
	o := newOrderer(1)
	dir, _ := newStore(t, o, 2)
	s, err := Open(dir, o.v)
	require.NoError(t, err)

	_, err = Open(dir, o.v)
	require.ErrorIs(t, err, ErrLocked)
	require.Contains(t, err.Error(), dir)
	require.Contains(t, err.Error(), "another blockgossip process")
	require.Contains(t, err.Error(), "stop it first")

	_, err = VerifyChain(dir, func(*pb.Block) (BlockVerifier, error) { return o.v, nil }, nil)
	require.ErrorIs(t, err, ErrLocked, "verify refuses a ledger a peer is using")

	require.NoError(t, s.Close())
	s, err = Open(dir, o.v)
	require.NoError(t, err, "the lock goes with Close")
	require.NoError(t, s.Close())
}

func TestStoreOpenDetectsCorruption(t *testing.T) {
	o := newOrderer(1)
	cases := []struct {
		name string
		edit func(db *leveldb.DB, blocks []*pb.Block) error
	}{
		{"tip names a missing block", func(db *leveldb.DB, _ []*pb.Block) error {
			return db.Delete(blockKey(3), nil)
		}},
		{"tip block replaced", func(db *leveldb.DB, blocks []*pb.Block) error {
			raw, _ := proto.Marshal(blocks[2])
			return db.Put(blockKey(3), raw, nil)
		}},
		{"tip block undecodable", func(db *leveldb.DB, _ []*pb.Block) error {
			return db.Put(blockKey(3), []byte{0xff, 0xff}, nil)
		}},
		{"tip record truncated", func(db *leveldb.DB, _ []*pb.Block) error {
			return db.Put(keyTip, []byte{0, 1, 2}, nil)
		}},
		{"tip record lost", func(db *leveldb.DB, _ []*pb.Block) error {
			return db.Delete(keyTip, nil)
		}},
		{"block beyond the tip", func(db *leveldb.DB, blocks []*pb.Block) error {
			raw, _ := proto.Marshal(blocks[0])
			return db.Put(blockKey(4), raw, nil)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, blocks := newStore(t, o, 4)
			rawDB(t, dir, func(db *leveldb.DB) { require.NoError(t, c.edit(db, blocks)) })
			s, err := Open(dir, o.v)
			if err == nil {
				s.Close()
			}
			requireCorrupted(t, err, dir)
		})
	}
}

// TestStoreDamagedFiles: damage LevelDB itself reports (here a garbled
// manifest) surfaces as ErrCorrupted with the way out.
func TestStoreDamagedFiles(t *testing.T) {
	o := newOrderer(1)
	dir, _ := newStore(t, o, 3)
	manifests, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	require.NoError(t, err)
	require.NotEmpty(t, manifests)
	require.NoError(t, os.WriteFile(manifests[0], []byte("not a manifest, not at all"), 0o644))
	_, err = Open(dir, o.v)
	requireCorrupted(t, err, dir)
	_, err = VerifyChain(dir, func(*pb.Block) (BlockVerifier, error) { return o.v, nil }, nil)
	requireCorrupted(t, err, dir)
}

func TestStoreCorruptBlockBelowTip(t *testing.T) {
	o := newOrderer(1)
	dir, blocks := newStore(t, o, 4)
	rawDB(t, dir, func(db *leveldb.DB) {
		require.NoError(t, db.Put(blockKey(1), []byte("junk"), nil))
		require.NoError(t, db.Delete(blockKey(2), nil))
	})
	s, err := Open(dir, o.v)
	require.NoError(t, err, "open checks only the tip; reads report the damage")
	defer s.Close()
	_, err = s.Block(1)
	requireCorrupted(t, err, dir)
	_, err = s.BlockByHash(HeaderHash(blocks[2]))
	requireCorrupted(t, err, dir)
	_, err = s.Range(0, 4, 0)
	requireCorrupted(t, err, dir)
	_, err = s.Range(2, 4, 0)
	requireCorrupted(t, err, dir)
}

func TestOpenConfig(t *testing.T) {
	o := newOrderer(1)
	require.NoError(t, DefaultConfig().Validate())
	bad := DefaultConfig()
	bad.WriteBufferBytes = -1
	require.Error(t, bad.Validate())
	_, err := OpenWithConfig(t.TempDir(), o.v, bad)
	require.Error(t, err)

	cfg := DefaultConfig()
	cfg.Compression = false
	s, err := OpenWithConfig(t.TempDir(), o.v, cfg)
	require.NoError(t, err)
	appendAll(t, s, o.chain(rand.New(rand.NewPCG(1, 1)), 3))
	require.NoError(t, s.Close())
}

func TestVerifyChain(t *testing.T) {
	o := newOrderer(1)
	fromGenesis := func(*pb.Block) (BlockVerifier, error) { return o.v, nil }

	t.Run("good", func(t *testing.T) {
		dir, _ := newStore(t, o, 6)
		var calls []uint64
		h, err := VerifyChain(dir, fromGenesis, func(done, total uint64) {
			require.Equal(t, uint64(6), total)
			calls = append(calls, done)
		})
		require.NoError(t, err)
		require.Equal(t, uint64(6), h)
		require.Equal(t, []uint64{1, 2, 3, 4, 5, 6}, calls)
	})
	t.Run("empty", func(t *testing.T) {
		dir, _ := newStore(t, o, 0)
		h, err := VerifyChain(dir, fromGenesis, nil)
		require.NoError(t, err)
		require.Zero(t, h)
	})
	t.Run("missing dir", func(t *testing.T) {
		_, err := VerifyChain(t.TempDir()+"/nope", fromGenesis, nil)
		require.Error(t, err)
	})
	t.Run("no verifier", func(t *testing.T) {
		_, err := VerifyChain(t.TempDir(), nil, nil)
		require.ErrorIs(t, err, ErrNoVerifier)
	})

	signedByOther := func(blocks []*pb.Block, n int) []byte {
		h, _ := ParseHeader(blocks[n])
		b := newOrderer(7).block(uint64(n), h.GetPreviousHash(), blocks[n].Data.Transactions)
		raw, _ := proto.Marshal(b)
		return raw
	}
	cases := []struct {
		name string
		bad  uint64
		edit func(db *leveldb.DB, blocks []*pb.Block)
		want error
	}{
		{"undecodable bytes", 3, func(db *leveldb.DB, _ []*pb.Block) {
			db.Put(blockKey(3), []byte("\xff\xfenot a block"), nil)
		}, ErrCorrupted},
		{"missing block", 2, func(db *leveldb.DB, _ []*pb.Block) {
			db.Delete(blockKey(2), nil)
		}, ErrCorrupted},
		{"transactions altered", 3, func(db *leveldb.DB, blocks []*pb.Block) {
			b := proto.Clone(blocks[3]).(*pb.Block)
			b.Data.Transactions[0] = append(b.Data.Transactions[0], 'x')
			raw, _ := proto.Marshal(b)
			db.Put(blockKey(3), raw, nil)
		}, ErrBadDataHash},
		{"signed by another key", 4, func(db *leveldb.DB, blocks []*pb.Block) {
			db.Put(blockKey(4), signedByOther(blocks, 4), nil)
		}, ErrBadSignature},
		{"block swapped", 1, func(db *leveldb.DB, blocks []*pb.Block) {
			raw, _ := proto.Marshal(blocks[2])
			db.Put(blockKey(1), raw, nil)
		}, ErrWrongNumber},
		{"hash index lost", 2, func(db *leveldb.DB, blocks []*pb.Block) {
			db.Delete(hashKey(HeaderHash(blocks[2])), nil)
		}, ErrCorrupted},
		{"block beyond tip", 5, func(db *leveldb.DB, blocks []*pb.Block) {
			raw, _ := proto.Marshal(blocks[0])
			db.Put(blockKey(5), raw, nil)
		}, ErrCorrupted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, blocks := newStore(t, o, 5)
			rawDB(t, dir, func(db *leveldb.DB) { c.edit(db, blocks) })
			h, err := VerifyChain(dir, fromGenesis, nil)
			var ce *ChainError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, c.bad, ce.Number)
			require.Equal(t, c.bad, h, "the good prefix ends at the bad block")
			require.ErrorIs(t, err, c.want)
			require.True(t, strings.HasPrefix(err.Error(), "block "), err.Error())
		})
	}

	t.Run("verifier from genesis fails", func(t *testing.T) {
		dir, _ := newStore(t, o, 2)
		boom := errors.New("genesis names no orderer")
		_, err := VerifyChain(dir, func(*pb.Block) (BlockVerifier, error) { return nil, boom }, nil)
		var ce *ChainError
		require.ErrorAs(t, err, &ce)
		require.Zero(t, ce.Number)
		require.ErrorIs(t, err, boom)
	})
}
