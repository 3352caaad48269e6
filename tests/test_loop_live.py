"""`LivePipeline` on a real TCP stream: JSON lines from a local server that drops the connection twice and
replays from an earlier point on every reconnect; nothing is lost or duplicated, the actuator gets every
action, and `close()` ends a reader blocked in a socket read."""
import json, socket, socketserver, threading, time

import numpy as np

from servers import wait_until
from tspace.loop.pipelines import LivePipeline
from tspace.loop.types import PipelineEnded, ToyAgent


class Conn:
    "One connection of a line-based stream: sends 'after N', yields JSON items, 'end' ends the stream."
    def __init__(self, addr, after):
        self.sock = socket.create_connection(addr, timeout=5)
        self.sock.sendall(f"after {'' if after is None else after}\n".encode())
        self.f = self.sock.makefile("r")

    def __iter__(self): return self

    def __next__(self):
        line = self.f.readline()
        if not line: raise ConnectionResetError("connection closed by the server")
        if line.strip() == "end": raise StopIteration
        return json.loads(line)

    def close(self):
        try: self.sock.shutdown(socket.SHUT_RDWR)
        except OSError: pass
        self.sock.close()


def serve(items, breaks=(), replay=0, stall_after=None):
    "A local TCP server streaming `items`; connection k closes abruptly before item breaks[k-1]."
    state = {"connections": 0, "afters": [], "stalled": threading.Event()}
    release = threading.Event()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            state["connections"] += 1
            k = state["connections"]
            arg = self.rfile.readline().decode().split()[1:]
            after = int(arg[0]) if arg else None
            state["afters"].append(after)
            start = 0 if after is None else max(0, after + 1 - replay)
            for i in range(start, len(items)):
                if k <= len(breaks) and i == breaks[k - 1]: return            # drop the connection
                if stall_after is not None and i == stall_after:
                    state["stalled"].set()                                     # everything before item `stall_after` is sent
                    release.wait(10); return
                self.wfile.write((json.dumps(items[i]) + "\n").encode()); self.wfile.flush()
            self.wfile.write(b"end\n")

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, state, release


def test_tcp_stream_disconnecting_twice():
    items = [{"seq": i, "obs": [float(i)], "reward": -float(i), "done": i == 15} for i in range(40)]
    srv, state, _ = serve(items, breaks=(12, 27), replay=3)
    sent = []
    live = LivePipeline(lambda after: Conn(srv.server_address, after), steps=5, actuator=sent.append, reconnect_delay_s=0.01)
    try:
        eps = []
        while True:
            try: eps.append(live.next_episode(ToyAgent(1, 1, {"noise": 0.0})))
            except PipelineEnded: break
        # by hand (episodes of 5 transitions or up to a done item): 0-4, 5-9, 10-14 (14 -> 15 is terminal), then a new
        # episode from item 16, ..., and 36-38 when the stream ends; connect(after) gets None, 11 (the first connection
        # dropped before 12) and 26; each reconnect replays 3 items: 6 duplicates dropped
        obs = [e.observations[:, 0].tolist() for e in eps]
        assert obs == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14], [16, 17, 18, 19, 20], [21, 22, 23, 24, 25],
                       [26, 27, 28, 29, 30], [31, 32, 33, 34, 35], [36, 37, 38]]
        nxt = np.concatenate([e.next_observations[:, 0] for e in eps]).tolist()
        assert nxt == [float(i) for i in range(1, 40) if i != 16]
        assert np.concatenate([e.rewards for e in eps]).tolist() == [-x for x in nxt]
        assert eps[2].terminated.tolist() == [False, False, False, False, True]
        assert state["afters"] == [None, 11, 26]
        st = live.stats()
        assert (st["received"], st["duplicates"], st["gaps"], st["reconnects"]) == (40, 6, 0, 2)
        assert len(sent) == 38 + 1                     # one action per transition, plus one on item 39
    finally:
        live.close()
        srv.shutdown(); srv.server_close()
    assert not live.reader_alive


def test_close_wakes_a_reader_blocked_in_a_socket_read():
    items = [{"seq": i, "obs": [0.0]} for i in range(10)]
    srv, state, release = serve(items, stall_after=4)      # sends 4 items, then nothing
    live = LivePipeline(lambda after: Conn(srv.server_address, after), steps=2)
    try:
        assert len(live.next_episode(ToyAgent())) == 2
        # the server sends nothing more, and the reader has taken all 4 items: its next readline() blocks
        assert state["stalled"].wait(10)
        wait_until(lambda: live.stats()["received"] == 4, what="the reader taking all 4 items")
        t0 = time.monotonic()
        live.close()
        assert time.monotonic() - t0 < 1.0
        assert not live.reader_alive
        assert live.stats()["received"] == 4
    finally:
        release.set()
        srv.shutdown(); srv.server_close()
