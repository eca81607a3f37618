package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/bench"
	"github.com/spf13/cobra"
)

func newBenchCmd() *cobra.Command {
	opts := bench.DefaultOptions()
	var (
		profile, compare, jsonPath, plotPath, child string
		cpuProfile, memProfile                      string
		grid, verbose                               bool
	)
	c := &cobra.Command{
		Use:   "bench [--profile NAME | --compare fabric,direct | --grid] [--peers N] [--blocks N] [--block-size BYTES] [--rate R]",
		Short: "Measure how fast and at what cost in bytes blocks reach every peer",
		Long: `bench starts an orderer stub and --peers peers in one process per profile,
over mutual-TLS gRPC on 127.0.0.1 (--transport grpc) or the in-memory network
(--transport mem), waits (untimed) for membership, election and the genesis
block, then cuts --blocks blocks of --block-size bytes at --rate blocks/s and
times each block from its cut to its commit at every peer.

Profiles: default (blockgossip), fabric (Hyperledger Fabric's gossip defaults:
push once to 3, pull every 4 s from 3, 10-block window) and direct (every peer
pulls every block from the orderer, as Fabric does since v2.2).

  --profile NAME         run one profile
  --compare fabric,direct  run default, then each named profile, and print ratios
  --grid                 peers {10,50,100} x block size {1 KiB,100 KiB,1 MiB},
                         30 blocks at 5 blocks/s, every profile

Each profile runs in its own child process, so CPU seconds and peak RSS are
that profile's alone. Amplification is block bytes received by all peers
(from the orderer and from each other) / (block size x peers x blocks), where
block size is the encoded block: direct delivery is 1.0. Wire amplification
counts every byte received, control messages included.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// All peers of a profile share the child's heap: at 100 peers x
			// 100 KiB a collection marked ~500 MB for 150-200 ms, and the
			// one block in flight then took ~190 ms to reach its last peer
			// against 20-45 ms for the others (GODEBUG=gctrace=1 beside
			// every block's receipts). A peer process of its own holds a
			// hundredth of that heap. At 400, with the collection bench.Run
			// makes before timing, the timed part of such a run has none
			// (1-2 at 100), for 50-100 MB more peak memory.
			collectLessOften(400)
			if child != "" {
				return runBenchChild(cmd, opts, child, verbose, cpuProfile, memProfile)
			}
			if err := opts.Validate(); err != nil {
				return usageError{err}
			}
			if plotPath != "" {
				if ext := strings.ToLower(plotPath); !strings.HasSuffix(ext, ".png") && !strings.HasSuffix(ext, ".svg") {
					return usageError{fmt.Errorf("--plot %q: %w", plotPath, bench.ErrPlotFormat)}
				}
			}
			exclusive := 0
			for _, set := range []bool{cmd.Flags().Changed("profile"), compare != "", grid} {
				if set {
					exclusive++
				}
			}
			if exclusive > 1 {
				return usageError{fmt.Errorf("--profile, --compare and --grid are exclusive: pick one")}
			}
			type job struct {
				opts    bench.Options
				profile string
			}
			var jobs []job
			switch {
			case grid:
				for _, o := range bench.GridOptions(opts) {
					for _, p := range bench.Profiles {
						jobs = append(jobs, job{o, p})
					}
				}
			case compare != "":
				others, err := bench.ParseProfiles(compare)
				if err != nil {
					return usageError{err}
				}
				jobs = append(jobs, job{opts, bench.ProfileDefault})
				for _, p := range others {
					jobs = append(jobs, job{opts, p})
				}
			default:
				ps, err := bench.ParseProfiles(profile)
				if err != nil || len(ps) != 1 {
					return usageError{fmt.Errorf("--profile %q: name one of %s", profile, strings.Join(bench.Profiles, ", "))}
				}
				jobs = append(jobs, job{opts, ps[0]})
			}
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("cannot find this binary to start the profile runs: %w", err)
			}
			out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var runs []bench.Result
			var failures []string
			for i, j := range jobs {
				fmt.Fprintf(errw, "[%d/%d] %s: %d peers, %d blocks of %d bytes over %s\n",
					i+1, len(jobs), j.profile, j.opts.Peers, j.opts.Blocks, j.opts.BlockSize, j.opts.Transport)
				args := append([]string{"bench"}, bench.ChildArgs(j.opts, j.profile)...)
				if verbose {
					args = append(args, "--verbose")
				}
				name := fmt.Sprintf("%s-%dpeers-%dB", j.profile, j.opts.Peers, j.opts.BlockSize)
				if cpuProfile != "" {
					args = append(args, "--cpuprofile", filepath.Join(cpuProfile, name+".pprof"))
				}
				if memProfile != "" {
					args = append(args, "--memprofile", filepath.Join(memProfile, name+"-heap.pprof"))
				}
				res, err := bench.RunChild(cmd.Context(), exe, args, j.opts, errw)
				if err != nil {
					failures = append(failures, fmt.Sprintf("%s (%d peers, %d bytes): %v", j.profile, j.opts.Peers, j.opts.BlockSize, err))
					fmt.Fprintf(errw, "  %v\n", err)
					if res.Profile == "" {
						continue
					}
				}
				runs = append(runs, res)
				if cmd.Context().Err() != nil {
					break
				}
			}
			if grid {
				bench.WriteGridTable(out, runs)
			} else {
				bench.WriteTable(out, runs)
				if len(runs) > 1 {
					fmt.Fprintln(out)
					bench.WriteRatios(out, runs)
				}
			}
			if jsonPath != "" {
				if err := bench.WriteJSON(jsonPath, runs); err != nil {
					return err
				}
			}
			if plotPath != "" {
				if err := bench.WritePlot(plotPath, runs); err != nil {
					return err
				}
			}
			if len(failures) > 0 {
				return fmt.Errorf("%d of %d profile runs failed: %s", len(failures), len(jobs), strings.Join(failures, "; "))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&opts.Transport, "transport", opts.Transport, "grpc (mutual TLS on 127.0.0.1) or mem (in-memory network)")
	f.IntVar(&opts.Peers, "peers", opts.Peers, "number of peers")
	f.IntVar(&opts.Orgs, "orgs", opts.Orgs, "number of organisations the peers are spread over")
	f.IntVar(&opts.Blocks, "blocks", opts.Blocks, "timed blocks to cut")
	f.IntVar(&opts.BlockSize, "block-size", opts.BlockSize, "transaction bytes per block")
	f.Float64Var(&opts.Rate, "rate", opts.Rate, "blocks cut per second (0 = each as soon as the previous reached every peer)")
	f.Uint64Var(&opts.Seed, "seed", opts.Seed, "seed of payloads and protocol randomness")
	f.DurationVar(&opts.Drain, "drain", opts.Drain, "how long after the last cut a block may take to reach every peer before it counts as incomplete")
	f.DurationVar(&opts.WarmupTimeout, "warmup-timeout", opts.WarmupTimeout, "bound on the untimed warm-up (membership, election, genesis)")
	f.IntVar(&opts.WarmupBlocks, "warmup-blocks", opts.WarmupBlocks, "untimed blocks cut after the warm-up, each awaited at every peer, so that the push tree has formed when timing starts (their times are reported apart)")
	f.StringVar(&profile, "profile", bench.ProfileDefault, "run one profile: "+strings.Join(bench.Profiles, ", "))
	f.StringVar(&compare, "compare", "", "run default, then these profiles (comma-separated), and print ratios")
	f.BoolVar(&grid, "grid", false, "run the grid: peers {10,50,100} x block size {1 KiB,100 KiB,1 MiB}, 30 blocks at 5/s, all profiles")
	f.StringVar(&jsonPath, "json", "", `write {"runs":[...]} to this file`)
	f.StringVar(&plotPath, "plot", "", "draw the CDF of time-to-last-peer per run into this .png or .svg")
	f.BoolVar(&verbose, "verbose", false, "log the nodes' warnings and errors to stderr")
	f.StringVar(&child, bench.ChildFlag, "", "run one profile in this process and print its JSON result (used by bench itself)")
	_ = f.MarkHidden(bench.ChildFlag)
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the timed part of each profile run into this directory (inspect with go tool pprof)")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile, taken as the timed part ends, of each profile run into this directory (inspect with go tool pprof)")
	return c
}

// runBenchChild runs one profile in this process: progress on stderr (a bar
// on a terminal), the result as one JSON object on stdout.
func runBenchChild(cmd *cobra.Command, opts bench.Options, profile string, verbose bool, cpuProfile, memProfile string) error {
	errw := cmd.ErrOrStderr()
	if cpuProfile != "" || memProfile != "" {
		prof := &timedProfiles{cpuPath: cpuProfile, memPath: memProfile}
		opts.OnTimed = prof.start
		defer func() {
			if prof.err != nil {
				fmt.Fprintf(errw, "  %v\n", prof.err)
			}
		}()
	}
	level := slog.LevelError + 1 // silent
	if verbose {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: level}))
	bar := newProgressBar(errw, profile)
	res, err := bench.Run(cmd.Context(), opts, profile, bar.update, logger)
	bar.finish()
	if res.Profile == "" || (err != nil && res.Deliveries == 0 && res.WarmupSeconds == 0) {
		return err // nothing ran: say why
	}
	if err != nil {
		fmt.Fprintf(errw, "  %s: %v (reporting what was delivered)\n", profile, err)
	}
	return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
}

// timedProfiles writes the profiles asked for of the timed part only: what
// CPU seconds report (start-up and warm-up of 100 peers would otherwise be
// half of a CPU profile), and the heap as the timed part ends.
type timedProfiles struct {
	cpuPath, memPath string
	err              error // the first failure; the bench goes on without profiles
}

func (p *timedProfiles) start() (end func()) {
	var cpu *os.File
	if p.cpuPath != "" {
		if cpu = p.create("--cpuprofile", p.cpuPath); cpu != nil {
			if err := pprof.StartCPUProfile(cpu); err != nil {
				p.fail(fmt.Errorf("--cpuprofile: %w", err))
				cpu.Close()
				cpu = nil
			}
		}
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				p.fail(fmt.Errorf("--cpuprofile: %w", err))
			}
		}
		if p.memPath == "" {
			return
		}
		// The heap as of the last collection in the timed part: no
		// collection is forced, so the run's figures stay as they were.
		if f := p.create("--memprofile", p.memPath); f != nil {
			err := pprof.Lookup("heap").WriteTo(f, 0)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				p.fail(fmt.Errorf("--memprofile: %w", err))
			}
		}
	}
}

func (p *timedProfiles) create(flag, path string) *os.File {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.fail(fmt.Errorf("%s: %w", flag, err))
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		p.fail(fmt.Errorf("%s: %w", flag, err))
		return nil
	}
	return f
}

func (p *timedProfiles) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// progressBar draws "profile phase [#####.....] complete/total" in place
// on a terminal; elsewhere it prints nothing.
type progressBar struct {
	w       io.Writer
	profile string
	tty     bool
	last    time.Time
}

func newProgressBar(w io.Writer, profile string) *progressBar {
	return &progressBar{w: w, profile: profile, tty: isTerminal(w)}
}

func (b *progressBar) update(phase string, complete, cut, total int) {
	if !b.tty || (time.Since(b.last) < 100*time.Millisecond && phase != "done") {
		return
	}
	b.last = time.Now()
	const width = 30
	filled := 0
	if total > 0 {
		filled = width * complete / total
	}
	fmt.Fprintf(b.w, "\r  %-8s %-9s [%s%s] %d/%d blocks at every peer, %d cut   ",
		b.profile, phase, strings.Repeat("#", filled), strings.Repeat(".", width-filled), complete, total, cut)
}

func (b *progressBar) finish() {
	if b.tty {
		fmt.Fprintln(b.w)
	}
}
