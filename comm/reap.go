package comm

import "time"

// Idle streams. Pull rounds to random peers, rotating relay neighbours and
// membership syncs open streams to ever more members; each holds a TLS
// session, HTTP/2 buffers and two goroutines at each end. The reaper
// retires those silent for Config.IdleTimeout, so a peer keeps streams to
// the members it talks to, not to all it ever talked to.
//
// Only the dialler reaps a stream, so the two ends never retire it at
// once; the other end sees an orderly end (as when a duplicate is
// drained). A reaped stream stops being the active one at once: the next
// Send dials a fresh stream without waiting for the drain, and an
// envelope the writer held at the moment of the reap is put back and
// dialled for (writerStopped). The peer's envelopes sent before our
// half-close reaches it are read to the end of the old stream; those it
// queues after go out on a new one (connClosed, sendOrphansLocked).

// reapLoop runs reapIdle a few times per IdleTimeout until Close: a
// stream is retired between one and five quarters of IdleTimeout after
// its last envelope.
func (t *GRPC) reapLoop() {
	tick := time.NewTicker(max(t.cfg.IdleTimeout/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case now := <-tick.C:
			t.reapIdle(now)
		}
	}
}

// reapIdle retires, as of now, every active stream we dialled that has
// carried no envelope either way for IdleTimeout while nothing is queued
// for its peer, and returns how many. Each is drained like a superseded
// stream; its peer is reported Down at once and dialled again by the next
// Send.
func (t *GRPC) reapIdle(now time.Time) int {
	t.mu.Lock()
	if t.closed || t.cfg.IdleTimeout <= 0 {
		t.mu.Unlock()
		return 0
	}
	type reaped struct {
		c    *conn
		idle time.Duration
	}
	var out []reaped
	for _, p := range t.peers {
		c := p.active
		if c == nil || c.dialer != t.self.ID || len(p.queue) > 0 {
			continue
		}
		idle := time.Duration(now.UnixNano() - c.lastActive.Load())
		if idle < t.cfg.IdleTimeout {
			continue
		}
		c.reaped, c.reapGen = true, p.gen
		p.active = nil
		c.drain()
		t.downLocked(p, false)
		out = append(out, reaped{c, idle})
	}
	t.reapedStreams.Add(uint64(len(out)))
	t.mu.Unlock()
	for _, r := range out {
		t.log.Debug("retiring idle stream", "peer", r.c.peer.String(), "idle", r.idle,
			"sent", r.c.nSent.Load(), "received", r.c.nRecv.Load())
	}
	return len(out)
}
