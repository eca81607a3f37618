package ledger

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/storage"
)

// TestStoreErrLatchesFailedCommit: a commit that cannot reach the disk
// leaves the height unchanged and is reported by Err until a later commit
// succeeds, so a health check can see a ledger that is readable but not
// writable (a full disk).
func TestStoreErrLatchesFailedCommit(t *testing.T) {
	o := newOrderer(7)
	s, err := Open(t.TempDir(), o.v)
	require.NoError(t, err)
	defer s.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	require.NoError(t, s.Append(o.next(rng, s)))
	require.NoError(t, s.Err())

	// Stand a database that refuses every write in for the real one.
	broken, err := leveldb.Open(storage.NewMemStorage(), nil)
	require.NoError(t, err)
	require.NoError(t, broken.Close())
	real := s.db
	s.db = broken
	b := o.next(rng, s)
	require.Error(t, s.Append(b))
	require.Error(t, s.Err(), "the failed commit is latched")
	require.Equal(t, uint64(1), s.Height(), "a failed commit does not move the height")

	s.db = real
	require.NoError(t, s.Append(b))
	require.NoError(t, s.Err(), "a successful commit clears the latch")
	require.Equal(t, uint64(2), s.Height())
}
