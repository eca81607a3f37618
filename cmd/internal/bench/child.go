package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// ChildFlag is the hidden flag that makes `blockgossip bench` run one
// profile in this process and print its Result as JSON on stdout.
const ChildFlag = "child-profile"

// ChildArgs are the flags (after the subcommand words) that make a child
// process run profile on opts.
func ChildArgs(opts Options, profile string) []string {
	return []string{
		"--" + ChildFlag, profile,
		"--transport", opts.Transport,
		"--peers", strconv.Itoa(opts.Peers),
		"--orgs", strconv.Itoa(opts.Orgs),
		"--blocks", strconv.Itoa(opts.Blocks),
		"--block-size", strconv.Itoa(opts.BlockSize),
		"--rate", strconv.FormatFloat(opts.Rate, 'g', -1, 64),
		"--seed", strconv.FormatUint(opts.Seed, 10),
		"--drain", opts.Drain.String(),
		"--warmup-timeout", opts.WarmupTimeout.String(),
		"--warmup-blocks", strconv.Itoa(opts.WarmupBlocks),
	}
}

// ErrChild means a child process failed to produce a result.
var ErrChild = errors.New("bench child process failed")

// RunChild runs one profile in a child process: exe with args (the
// subcommand words then ChildArgs). The child's stderr (progress, logs)
// goes to stderr. It is interrupted when ctx ends or opts.Deadline passes,
// and killed 10 s later if it has not stopped.
func RunChild(ctx context.Context, exe string, args []string, opts Options, stderr io.Writer) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.Deadline()+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	runErr := cmd.Run()
	var res Result
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &res); err != nil {
		if runErr == nil {
			runErr = err
		}
		return res, fmt.Errorf("%w: %s: %v (run it alone with --profile to see why)", ErrChild, exe, runErr)
	}
	if runErr != nil {
		// The child reported what it delivered before failing: keep it.
		return res, fmt.Errorf("%w: %v", ErrChild, runErr)
	}
	return res, nil
}
