package main

import (
	"runtime/debug"
	"testing"
)

func TestCollectLessOftenLeavesAnExplicitGOGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	t.Setenv("GOGC", "100")
	collectLessOften(400)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent %d with GOGC=100 set, want 100 kept", got)
	}
}

func TestCollectLessOftenSetsTargetAndLimit(t *testing.T) {
	before, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	defer func() { debug.SetGCPercent(before); debug.SetMemoryLimit(limit) }()
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	collectLessOften(400)
	if got := debug.SetGCPercent(100); got != 400 {
		t.Fatalf("GC percent %d, want 400", got)
	}
	total := physicalMemory()
	if total <= 0 {
		t.Skip("no /proc/meminfo here: no memory limit to check")
	}
	if got := debug.SetMemoryLimit(-1); got != total/2 {
		t.Fatalf("memory limit %d, want half of %d", got, total)
	}
}
