package comm

import "time"

// preferred reports whether c should replace old as the active stream.
//
// A newer stream from the same dialer wins, and so does any stream
// replacing one older than HandshakeTimeout: a peer dials only when it has
// no stream, so it has lost the old one (it restarted, say) even if we have
// not noticed yet. Otherwise the two are simultaneous dials and the lower
// PKI-ID's wins. Both ends agree: the server of a stream makes it active
// before the client does, so the server's copy is the older; whenever the
// accepting server finds the old stream stale, so does the client.
func (c *conn) preferred(old *conn) bool {
	if c.dialer == old.dialer || time.Since(old.since) > c.t.cfg.HandshakeTimeout {
		return true
	}
	low := c.t.self.ID
	if c.peer.Less(low) {
		low = c.peer
	}
	return c.dialer == low
}

// registerLocked makes c the peer's active stream if it is preferred,
// draining the previous one. It starts no goroutine. t.mu held.
func (t *GRPC) registerLocked(c *conn) bool {
	if t.closed {
		return false
	}
	p := t.peerLocked(c.peer)
	old := p.active
	if old != nil && !c.preferred(old) {
		return false
	}
	p.active, p.org = c, c.member.Org
	c.since = time.Now()
	c.lastActive.Store(c.since.UnixNano())
	t.conns[c] = struct{}{}
	if c.dialer == t.self.ID {
		p.backoff, p.retryAt = 0, time.Time{}
	}
	switch {
	case old != nil:
		old.drain()
	case p.downTimer != nil: // replaces a retired stream: still up
		p.downTimer.Stop()
		p.downTimer = nil
	default:
		t.emit(Event{Peer: c.peer, Org: c.member.Org, Up: true})
	}
	c.watchExpiry()
	return true
}

// startLocked runs c's reader and, if c is active, its writer. t.mu held.
func (t *GRPC) startLocked(c *conn, writer bool) {
	if writer {
		q := t.peerLocked(c.peer).queue
		t.goLocked(func() { c.writeLoop(q) })
	}
	t.goLocked(c.readLoop)
}

// adopt takes a stream we dialled: active if preferred, else drained.
func (t *GRPC) adopt(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.registerLocked(c) {
		t.startLocked(c, true)
		return
	}
	if t.closed {
		c.cancel()
		_ = c.cc.Close()
		return
	}
	// The peer already accepted it and may be writing: half-close (there
	// is no writer to do it), read to the end.
	t.conns[c] = struct{}{}
	_ = c.closeSend()
	t.startLocked(c, false)
	c.drain()
}

// connClosed forgets a finished conn; a Down event if it was the active one.
func (t *GRPC) connClosed(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.conns, c)
	p := t.peers[c.peer]
	if p == nil || p.active != c {
		return
	}
	p.active = nil
	if c.err != nil || t.closed {
		t.downLocked(p, !t.closed)
		return
	}
	// The peer retired our active stream, most likely for another one
	// about to reach us: wait for it before telling anyone the peer is
	// down. But if it retired the stream for being idle (reapIdle), none
	// is coming, so envelopes waiting for the peer do not wait for it.
	var tm *time.Timer
	tm = time.AfterFunc(t.cfg.HandshakeTimeout, func() {
		t.mu.Lock() // held by us until tm is set
		defer t.mu.Unlock()
		if p.downTimer == tm && p.active == nil && !t.closed {
			t.downLocked(p, false)
		}
	})
	p.downTimer = tm
	t.sendOrphansLocked(p, c)
}

// writerStopped runs when c's writer returns: an envelope it took and put
// back must not wait for a stream that may never come.
func (t *GRPC) writerStopped(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[c.peer]; p != nil {
		t.sendOrphansLocked(p, c)
	}
}

// sendOrphansLocked dials at once if envelopes wait for the peer while no
// stream is active and none may come: we reaped c, the peer's last stream
// (only our dial replaces it), or the peer ended its stream cleanly
// (p.downTimer: it may have reaped it). A Send in that state dials
// likewise; this covers envelopes queued before it, and those a writer
// put back. After an error or Disconnect, redialling is left to
// downLocked and Send. t.mu held.
func (t *GRPC) sendOrphansLocked(p *peerState, c *conn) {
	if t.closed || p.active != nil || len(p.queue) == 0 {
		return
	}
	if p.downTimer != nil || (c.reaped && c.reapGen == p.gen) {
		t.maybeDialLocked(p)
	}
}

// downLocked tells that the peer is down (broken: its stream failed, see
// Event.Broken) and, if envelopes are waiting, redials it. t.mu held.
func (t *GRPC) downLocked(p *peerState, broken bool) {
	if p.downTimer != nil {
		p.downTimer.Stop()
		p.downTimer = nil
	}
	t.emit(Event{Peer: p.id, Org: p.org, Up: false, Broken: broken})
	t.scheduleDialLocked(p)
}
