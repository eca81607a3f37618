package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testChild parses the flags ChildArgs writes (the names the bench
// command defines) and runs the profile, printing its Result.
func testChild(args []string) int {
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	var o Options
	profile := fs.String(ChildFlag, "", "")
	fs.StringVar(&o.Transport, "transport", "", "")
	fs.IntVar(&o.Peers, "peers", 0, "")
	fs.IntVar(&o.Orgs, "orgs", 0, "")
	fs.IntVar(&o.Blocks, "blocks", 0, "")
	fs.IntVar(&o.BlockSize, "block-size", 0, "")
	fs.Float64Var(&o.Rate, "rate", 0, "")
	fs.Uint64Var(&o.Seed, "seed", 0, "")
	fs.DurationVar(&o.Drain, "drain", 0, "")
	fs.DurationVar(&o.WarmupTimeout, "warmup-timeout", 0, "")
	fs.IntVar(&o.WarmupBlocks, "warmup-blocks", 0, "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	res, err := Run(context.Background(), o, *profile, nil, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if json.NewEncoder(os.Stdout).Encode(res) != nil {
		return 1
	}
	return 0
}

// A profile run in a child process comes back whole, with the child's own
// CPU time and peak RSS.
func TestRunChild(t *testing.T) {
	t.Setenv("BENCH_TEST_CHILD", "1")
	o := tinyOptions(3, 1)
	o.Seed = 42
	res, err := RunChild(context.Background(), os.Args[0], ChildArgs(o, ProfileDirect), o, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ProfileDirect, res.Profile)
	assert.Equal(t, uint64(42), res.Seed)
	assert.Equal(t, o.Blocks, res.Blocks)
	assert.Equal(t, 1.0, res.DeliveryRatio)
	assert.Greater(t, res.PeakRSSBytes, uint64(0))
	assert.Greater(t, res.CPUSecondsTotal, 0.0)
	assert.Len(t, res.WarmupTimeToLastMs, o.WarmupBlocks, "each warm-up block is reported, untimed")
	assert.Greater(t, res.AllocBytes, uint64(o.Blocks*o.BlockSize), "every block is allocated at least once while timed")

	_, err = RunChild(context.Background(), os.Args[0], ChildArgs(o, "nope"), o, io.Discard)
	assert.ErrorIs(t, err, ErrChild, "a child that fails to start reports no result")
}
