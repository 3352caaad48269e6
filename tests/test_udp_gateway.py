"UDP gateway over a real socket: good datagrams become frames and HMI events, bad ones are counted."
import json, socket, threading, time
import numpy as np
import pandas as pd
from tspace.conn.udp import UdpGateway

def test_datagrams_over_loopback():
    with UdpGateway(frame_len=10, sample_hz=20, timeout_s=2.0) as gw:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        def bridge():
            tx.sendto(b'{"status": "begin"}', gw.address)
            for i in range(40):                                   # 0.8 s of a constant-speed drive at 50 Hz
                tx.sendto(json.dumps({"data": {"velocity": 50.0, "pedal": 0.2, "brake_pressure": 0.0, "A": 80.0, "V": 640.0}}).encode(), gw.address)
                if i % 10 == 0: tx.sendto(b"\x80\x03pickle?", gw.address)
                if i == 5: tx.sendto(b'{"data": {"velocity": 1}}', gw.address)
                time.sleep(0.02)
            tx.sendto(b'{"status": "end_valid"}', gw.address)
            tx.sendto(b'{"status": "exit"}', gw.address)
        t = threading.Thread(target=bridge); t.start()
        events = list(gw.events())
        t.join(); tx.close()
    kinds = [e for e in events if e[0] == "hmi"]
    assert kinds == [("hmi", "begin"), ("hmi", "end_valid"), ("hmi", "exit")]
    frames = [e[1] for e in events if e[0] == "frame"]
    assert len(frames) >= 1
    f = pd.concat(frames)
    assert str(f.index.tz) == "UTC"
    np.testing.assert_allclose(f[["velocity", "thrust", "brake", "current", "voltage"]].to_numpy(),
                               np.tile([50.0, 0.2, 0.0, 80.0, 640.0], (len(f), 1)))
    assert gw.stats["malformed"] == 5 and gw.stats["samples"] == 40
