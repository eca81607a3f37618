package main

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// collectLessOften sets the garbage collector's target to percent (GOGC)
// for a process that runs many peers on one heap, unless GOGC is set. A
// real peer has a heap of its own, a few MB; here every peer's ledger and
// blocks are on one heap, and each collection's marking holds up all
// peers at once. Unless GOMEMLIMIT is set, it also sets a soft memory limit
// of half the machine's memory, so that the larger heap this allows
// makes the collector work harder rather than the machine swap.
func collectLessOften(percent int) {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(percent)
	if os.Getenv("GOMEMLIMIT") == "" {
		if total := physicalMemory(); total > 0 {
			debug.SetMemoryLimit(total / 2)
		}
	}
}

// physicalMemory returns the machine's memory in bytes (MemTotal of
// /proc/meminfo), or 0 where it cannot tell.
func physicalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
