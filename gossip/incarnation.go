package gossip

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// IncarnationStore hands out this peer's incarnation number at start-up.
// Each call to Next must return a number larger than every number it
// returned before, across restarts, even if the clock stepped back.
type IncarnationStore interface {
	Next(now time.Time) (uint64, error)
}

// FileIncarnationStore keeps the last incarnation in a small file (put it
// next to the ledger). Next returns max(stored+1, now in Unix nanoseconds)
// and persists it (write to a temporary file, fsync, rename) before
// returning.
type FileIncarnationStore struct {
	Path string
	mu   sync.Mutex
}

var _ IncarnationStore = (*FileIncarnationStore)(nil)

// ErrCorruptIncarnation: the incarnation file does not hold a number. Delete
// it only if you are sure no older incarnation of this peer is still
// remembered by others (or wait for PurgeAfter first).
var ErrCorruptIncarnation = errors.New("corrupt incarnation file")

// Next returns the next incarnation and persists it.
func (s *FileIncarnationStore) Next(now time.Time) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var stored uint64
	switch b, err := os.ReadFile(s.Path); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("read incarnation: %w", err)
	default:
		stored, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w %s: %v", ErrCorruptIncarnation, s.Path, err)
		}
	}
	next := stored + 1
	if ns := now.UnixNano(); ns > 0 && uint64(ns) > next {
		next = uint64(ns)
	}
	if err := writeFileSync(s.Path, []byte(strconv.FormatUint(next, 10)+"\n")); err != nil {
		return 0, fmt.Errorf("persist incarnation: %w", err)
	}
	return next, nil
}

func writeFileSync(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // make the rename durable where the OS allows
		d.Close()
	}
	return nil
}

// MemoryIncarnationStore is an IncarnationStore for tests and simulations:
// it survives "restarts" as long as the value lives.
type MemoryIncarnationStore struct {
	mu   sync.Mutex
	last uint64
}

// Next returns max(last+1, now in Unix nanoseconds).
func (s *MemoryIncarnationStore) Next(now time.Time) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last++
	if ns := now.UnixNano(); ns > 0 && uint64(ns) > s.last {
		s.last = uint64(ns)
	}
	return s.last, nil
}
