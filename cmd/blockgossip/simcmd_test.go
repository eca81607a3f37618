package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blockgossip/blockgossip/cmd/internal/sim"
	"github.com/stretchr/testify/require"
)

// simArgs is a workload of a few milliseconds per run.
var simArgs = []string{"sim", "--peers", "20", "--blocks", "3", "--block-size", "512", "--view", "8", "--seed", "5"}

func simCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return cli(t, append(append([]string{}, simArgs...), args...)...)
}

// Without --seeds or --baseline, sim writes what it always wrote: the JSON
// of the runs, as sim.Run and sim.MarshalJSON make it.
func TestSimOneSeedUnchanged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.json")
	code, out, errOut := simCLI(t, "--churn", "0.1", "--loss", "0.05", "--json", path)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "host:")
	require.Contains(t, out, "delivery ratio")
	require.NotContains(t, out, "seeds")

	o := sim.DefaultOptions()
	o.Peers, o.Blocks, o.BlockSize, o.View, o.Seed, o.Churn, o.Loss = 20, 3, 512, 8, 5, 0.1, 0.05
	r, err := sim.Run(context.Background(), o, sim.ProfileDefault, nil)
	require.NoError(t, err)
	want, err := sim.MarshalJSON([]sim.Result{r})
	require.NoError(t, err)
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

// A sweep with a baseline prints its table and writes {"sweeps": [...]},
// the same bytes whatever --parallel is.
func TestSimSweepCLI(t *testing.T) {
	dir := t.TempDir()
	var files [2][]byte
	for i, p := range []string{"1", "3"} {
		path := filepath.Join(dir, "sweep"+p+".json")
		code, out, errOut := simCLI(t, "--churn", "0.1", "--loss", "0.05", "--seeds", "3", "--baseline", "--parallel", p, "--json", path)
		require.Equal(t, 0, code, errOut)
		for _, want := range []string{"default, 3 seeds", "seeds 5-7", "healthy p99 (ms) mean", "seeds above 2x", "p99.9", "faulty (live)"} {
			require.Contains(t, out, want)
		}
		require.Contains(t, errOut, "(6/6)", "the last run's progress line")
		require.Equal(t, 1, strings.Count(errOut, "host:"), "one host line for the sweep")
		var err error
		files[i], err = os.ReadFile(path)
		require.NoError(t, err)
	}
	require.True(t, bytes.Equal(files[0], files[1]), "--parallel 1 and 3 wrote different JSON:\n%s\n---\n%s", files[0], files[1])
	var doc struct {
		Sweeps []struct {
			SeedFirst uint64 `json:"seed_first"`
			Seeds     int    `json:"seeds"`
			Baseline  bool   `json:"baseline"`
			PerSeed   []struct {
				Seed  uint64   `json:"seed"`
				Ratio *float64 `json:"ratio"`
			} `json:"per_seed"`
		} `json:"sweeps"`
	}
	require.NoError(t, json.Unmarshal(files[0], &doc))
	require.Len(t, doc.Sweeps, 1)
	s := doc.Sweeps[0]
	require.True(t, s.Baseline)
	require.Equal(t, uint64(5), s.SeedFirst)
	require.Len(t, s.PerSeed, 3)
	require.Equal(t, uint64(7), s.PerSeed[2].Seed)
	require.NotNil(t, s.PerSeed[2].Ratio)
}

func TestSimSweepUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--seeds", "4", "--baseline"}, "--baseline compares faulty runs with healthy ones: set --loss or --churn"},
		{[]string{"--seeds", "0"}, "--seeds 0: pass how many seeds to run"},
		{[]string{"--parallel", "0"}, "--parallel 0: pass how many runs go at once"},
		{[]string{"--seed", "18446744073709551615", "--seeds", "2"}, "the last seed would pass 2^64-1"},
	} {
		code, _, errOut := simCLI(t, c.args...)
		require.Equal(t, 2, code, "%v: %s", c.args, errOut)
		require.Contains(t, errOut, c.want, c.args)
		require.Contains(t, errOut, "Usage:")
	}
}
