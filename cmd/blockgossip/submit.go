package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/blockgossip/blockgossip/cmd/internal/client"
	"github.com/blockgossip/blockgossip/cmd/internal/netctl"
	pb "github.com/blockgossip/blockgossip/protos"
	"github.com/spf13/cobra"
)

// submitResult is what `submit --json` prints.
type submitResult struct {
	Submitted int      `json:"submitted"`
	Accepted  int      `json:"accepted"`
	Blocks    []uint64 `json:"blocks"`
}

func newSubmitCmd() *cobra.Command {
	var (
		t        target
		count    int
		size     int
		perCall  int
		asJSON   bool
		noWait   bool
		timeout  time.Duration
		seedFlag uint64
	)
	c := &cobra.Command{
		Use:   "submit (--network DIR | --orderer ADDR --cert F --key F --ca F) [--count N] [--size BYTES]",
		Short: "Submit transactions to the orderer stub and report into which blocks they were cut",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 1 || size < 1 || perCall < 1 {
				return usageError{fmt.Errorf("--count, --size and --per-call must be positive")}
			}
			addr, creds, err := t.resolve("", "orderer", (*netctl.File).Orderer)
			if err != nil {
				return err
			}
			id, msp, err := creds.Load()
			if err != nil {
				return err
			}
			conn, err := client.Dial(addr, id, msp)
			if err != nil {
				return err
			}
			defer conn.Close()
			seed := seedFlag
			if seed == 0 {
				seed = uint64(time.Now().UnixNano())
			}
			txs := randomTxs(rand.New(rand.NewPCG(seed, 0)), count, size)
			res, err := submit(cmd.Context(), pb.NewAtomicBroadcastClient(conn), txs, perCall, !noWait, timeout)
			if err != nil {
				return explainRPC(err, addr)
			}
			if asJSON {
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(res); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "accepted %d/%d transactions of %d bytes", res.Accepted, res.Submitted, size)
				if len(res.Blocks) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), " into blocks %s", joinNumbers(res.Blocks))
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
			if res.Accepted < res.Submitted {
				return fmt.Errorf("the orderer accepted only %d of %d transactions (see its log)", res.Accepted, res.Submitted)
			}
			return nil
		},
	}
	t.addFlags(c, "", "", "orderer")
	f := c.Flags()
	f.IntVar(&count, "count", 1, "transactions to submit")
	f.IntVar(&size, "size", 256, "bytes per transaction")
	f.IntVar(&perCall, "per-call", 50, "transactions per Broadcast call")
	f.BoolVar(&noWait, "no-wait", false, "do not wait for the transactions to be cut into blocks")
	f.BoolVar(&asJSON, "json", false, `print {"submitted":N,"accepted":N,"blocks":[...]}`)
	f.DurationVar(&timeout, "timeout", 30*time.Second, "deadline of each Broadcast call")
	f.Uint64Var(&seedFlag, "seed", 0, "seed of the random transaction bytes (0: from the clock)")
	return c
}

func randomTxs(rng *rand.Rand, count, size int) [][]byte {
	txs := make([][]byte, count)
	for i := range txs {
		tx := make([]byte, size)
		for j := 0; j < size; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < size; k++ {
				tx[j+k] = byte(v >> (8 * k))
			}
		}
		txs[i] = tx
	}
	return txs
}

// submit sends txs in calls of at most perCall transactions (and about
// 1 MiB), in order, and collects where they landed.
func submit(ctx context.Context, ab pb.AtomicBroadcastClient, txs [][]byte, perCall int, wait bool, timeout time.Duration) (submitResult, error) {
	const maxCallBytes = 1 << 20
	res := submitResult{Blocks: []uint64{}}
	for start := 0; start < len(txs); {
		end, bytes := start, 0
		for end < len(txs) && end-start < perCall && (end == start || bytes+len(txs[end]) <= maxCallBytes) {
			bytes += len(txs[end])
			end++
		}
		callCtx, cancel := context.WithTimeout(ctx, timeout)
		resp, err := ab.Broadcast(callCtx, &pb.SubmitRequest{Transactions: txs[start:end], WaitForBlocks: wait})
		cancel()
		res.Submitted += end - start
		if err != nil {
			return res, fmt.Errorf("broadcast transactions %d-%d: %w", start, end-1, err)
		}
		res.Accepted += int(resp.GetAccepted())
		for _, p := range resp.GetPlacements() {
			if !slices.Contains(res.Blocks, p.GetBlockNumber()) {
				res.Blocks = append(res.Blocks, p.GetBlockNumber())
			}
		}
		start = end
	}
	slices.Sort(res.Blocks)
	return res, nil
}

// joinNumbers prints block numbers, folding runs: "3-5, 8".
func joinNumbers(ns []uint64) string {
	var parts []string
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprint(ns[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ns[i], ns[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
