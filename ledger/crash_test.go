package ledger

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/stretchr/testify/require"
)

// crashDirEnv tells a re-executed test binary to act as the appender.
const crashDirEnv = "BLOCKGOSSIP_LEDGER_CRASH_DIR"

// TestHelperAppender is not a test: TestCrashRecovery runs the test binary
// again with only this function selected and crashDirEnv set. It resumes
// the ledger, appends one block, prints "ready", then appends as fast as
// it can until it is killed.
func TestHelperAppender(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	o := newOrderer(1)
	s, err := Open(dir, o.v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		os.Exit(2)
	}
	rng := rand.New(rand.NewPCG(s.Height(), 0)) // resumed height: a new stream per round
	for i := 0; ; i++ {
		// Up to ~48 KiB per block, so a batch spans LevelDB journal
		// chunks (32 KiB) and tables get flushed along the way.
		if err := s.Append(o.block(s.Height(), s.Tip().CurrentHash, randomTxs(rng, 12<<10))); err != nil {
			fmt.Fprintln(os.Stderr, "helper: append:", err)
			os.Exit(3)
		}
		if i == 0 {
			fmt.Println("ready")
		}
	}
}

// TestCrashRecovery SIGKILLs an appending process at random moments and
// checks that the ledger always reopens at a consistent tip that never
// moves backwards.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("inside the helper")
	}
	const rounds = 20
	rng := rand.New(rand.NewPCG(42, 7))
	dir := t.TempDir()
	o := newOrderer(1)
	var lastHeight uint64
	for round := range rounds {
		killAppender(t, dir, time.Duration(rng.IntN(40))*time.Millisecond)

		s, err := Open(dir, o.v)
		require.NoError(t, err, "round %d: reopen after SIGKILL", round)
		h := s.Height()
		require.GreaterOrEqual(t, h, uint64(1), "round %d", round)
		require.GreaterOrEqual(t, h, lastHeight, "round %d: a committed block was lost", round)
		requireConsistent(t, s)
		require.NoError(t, s.Close())
		lastHeight = h
	}
	h, err := VerifyChain(dir, func(*pb.Block) (BlockVerifier, error) { return o.v, nil }, nil)
	require.NoError(t, err)
	require.Equal(t, lastHeight, h)
	t.Logf("%d crashes survived, final height %d", rounds, lastHeight)
}

// killAppender starts the helper on dir, waits until it has committed a
// block, lets it run for delay and kills it with SIGKILL.
func killAppender(t *testing.T, dir string, delay time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		_ = cmd.Wait()
		t.Fatalf("appender exited before its first commit: %s", stderr.String())
	}
	time.Sleep(delay) // not waiting for progress: choosing when to crash
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait() // reports "signal: killed"
}

// requireConsistent walks the whole chain: every block links to the one
// before, passes verification, and the last one is the tip.
func requireConsistent(t *testing.T, l Ledger) {
	t.Helper()
	tip := l.Tip()
	var prev TipInfo
	for start := uint64(0); start < tip.Height; {
		blocks, err := l.Range(start, tip.Height, 4<<20)
		require.NoError(t, err)
		for _, b := range blocks {
			a, err := prepare(b, prev, nopVerifier{})
			require.NoError(t, err, "block %d", prev.Height)
			prev = a.tip
		}
		start += uint64(len(blocks))
	}
	require.Equal(t, tip, prev)
}

// nopVerifier accepts every signature; requireConsistent checks linkage
// and data hashes, VerifyChain checks signatures.
type nopVerifier struct{}

func (nopVerifier) VerifyBlockSignature(_, _ []byte) error { return nil }
