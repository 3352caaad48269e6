"""HMI over MQTT through a real mosquitto broker on 127.0.0.1 (started here with a generated config on a free port, stopped
afterwards; `.ci/apt-packages` installs the Debian package `mosquitto`). An MQTT begin/end pair opens and closes an episode in
the Cruncher fed by the cloud truck: simulated TBox -> object store -> RemoteCAN -> Cruncher, flashes going back the same way."""
import threading, time

import numpy as np
import pandas as pd
import pytest

from tspace.config.hmi import HMIConfig
from tspace.conn.mqtt import MqttHMI
from tspace.conn.objstore import ObjectStore
from tspace.data.core import cloud_truck_meta
from tspace.dataflow.cloud import RemoteCAN
from tspace.dataflow.cruncher import Cruncher
from tspace.dataflow.pipeline import BlockingQueue, DropOldestQueue, QueueClosed, flash_worker
from tspace.sim.tbox import TBox
from tspace.system.errors import TspaceConnectionError


from servers import Mosquitto


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "mosquitto").start()
    yield b
    b.stop()


def hmi_cfg(port, **kw) -> HMIConfig:
    return HMIConfig(kind="mqtt", host="127.0.0.1", port=port, **kw)


def test_events_through_the_broker(broker):
    "The UDP source's semantics through mosquitto: statuses in order, malformed counted, a redelivered id skipped, exit ends it."
    with MqttHMI(hmi_cfg(broker.port), "truck-a") as hmi, MqttHMI(hmi_cfg(broker.port), "truck-a") as app, \
         MqttHMI(hmi_cfg(broker.port), "truck-b") as other:
        other.publish("exit")                                                # another vehicle's topic: not ours
        app.publish("begin", at="2026-03-29T03:30:00+02:00", id="m1")
        app.publish("begin", at="2026-03-29T03:30:00+02:00", id="m1")        # a QoS 1 redelivery
        app.client.publish(app.topic, b"{broken", qos=1).wait_for_publish(5)
        app.client.publish(app.topic, b"end_invalid", qos=1).wait_for_publish(5)
        app.publish("begin"); app.publish("end_valid"); app.publish("exit")
        got = list(hmi.messages())
        assert hmi.topic == "tspace/truck-a/hmi"
    assert [s for s, _ in got] == ["begin", "end_invalid", "begin", "end_valid", "exit"]
    assert got[0][1] == pd.Timestamp("2026-03-29T01:30:00Z")
    assert (hmi.stats["malformed"], hmi.stats["duplicates"], hmi.stats["hmi_begin"], hmi.stats["hmi_exit"]) == (1, 1, 2, 1)


def test_credentials_and_reconnect(tmp_path):
    "A broker with a password file: the right password connects, a wrong one is refused; after a broker restart the client is back."
    b = Mosquitto(tmp_path / "auth", users={"driver-app": "s3cret"}).start()
    try:
        with pytest.raises(TspaceConnectionError, match="refused"):
            MqttHMI(hmi_cfg(b.port, username="driver-app", password="wrong"), "truck-c", connect_timeout_s=3).connect()
        cfg = hmi_cfg(b.port, username="driver-app", password="s3cret")
        hmi = MqttHMI(cfg, "truck-c").connect()
        with MqttHMI(cfg, "truck-c") as app: app.publish("begin")
        assert hmi.get(5) == ("begin", None)
        b.stop(); b.start()                                                  # same port, fresh broker
        deadline = time.monotonic() + 15
        while not hmi._subscribed.is_set() and time.monotonic() < deadline: time.sleep(0.05)
        assert hmi._subscribed.is_set() and hmi.stats["disconnects"] >= 1 and hmi.stats["connects"] >= 2
        with MqttHMI(cfg, "truck-c") as app: app.publish("end_valid")
        assert hmi.get(5) == ("end_valid", None)
        hmi.close()
    finally:
        b.stop()


class ConstantAgent:
    "Asks for the same lowering of the torque map at every step."
    def __init__(self, a): self.a, self.calls = a, 0
    def act(self, obs):
        assert obs.shape == (200, 3)
        self.calls += 1
        return self.a


def test_mqtt_begin_end_pair_opens_and_closes_an_episode(broker, tmp_path):
    vehicle = "cloud-truck-mqtt"
    store = ObjectStore(f"file://{tmp_path}/cloud", retries=2, backoff_s=0.02).create()
    tbox = TBox(store, vehicle, speedup=40.0, loop=True, poll_s=0.02, timezone="Europe/Berlin")
    meta = cloud_truck_meta(vehicle, "driver-7", "Europe/Berlin")
    action = np.full(meta.action.shape, -0.4, np.float32)
    frames_q, events_q = DropOldestQueue(64, name="frames"), BlockingQueue(16, timeout=5.0, name="events")
    flash_q = BlockingQueue(8, timeout=5.0, name="flash")
    cr = Cruncher(meta, ConstantAgent(action), flash_queue=flash_q, confirm_timeout=5.0, poll_s=0.01)
    stock = tbox.sim.stock_map

    def write(req):                      # what the loop's flash thread does: speed window, budgeted rows, flash
        start = stock.window(req.velocity_kmh or 0.0, meta.action.rows)
        rows = meta.action.apply(stock.table[start:start + meta.action.rows], req.action)
        rc.flash_rows(start, rows)
        return rc.last_ack.at             # when it took effect, on the truck's clock (the frames' clock)

    stop = threading.Event()
    rc = RemoteCAN(store, vehicle, poll_s=0.02, request_timeout_s=10.0, silence_s=10.0, ack_poll_s=0.01)
    hmi = MqttHMI(hmi_cfg(broker.port), vehicle)
    def feed_frames():
        try:
            for f in rc.frames():
                if stop.is_set(): return
                frames_q.put(f)
        except QueueClosed: pass
    threads = [threading.Thread(target=feed_frames, daemon=True),
               threading.Thread(target=hmi.pump, args=(stop, events_q), daemon=True),
               threading.Thread(target=flash_worker, args=(stop, flash_q, write, cr.confirm), daemon=True)]
    result = {}
    crunch = threading.Thread(target=lambda: result.update(cr.run(stop, frames_q, events_q)), daemon=True)
    with tbox, rc, hmi, MqttHMI(hmi_cfg(broker.port), vehicle) as app:
        for t in threads + [crunch]: t.start()
        app.publish("begin")
        deadline = time.monotonic() + 20
        while cr.counts["records"] < 4 and time.monotonic() < deadline: time.sleep(0.02)
        app.publish("end_valid")
        app.publish("exit")
        crunch.join(20)
        stop.set()
        for t in threads: t.join(5)
    assert not crunch.is_alive() and result["exited"]
    assert (result["episodes_begun"], result["episodes_stored"], result["bad_frames"]) == (1, 1, 0), result
    ep = cr.last_episode
    assert len(ep) >= 4 and ep.vehicle.unique().tolist() == [vehicle] and ep.driver.unique().tolist() == ["driver-7"]
    assert str(ep.index.tz) == "Europe/Berlin" and ep.terminal.tolist()[-1] and not ep.terminal.tolist()[:-1].count(True)
    assert np.stack(ep.state.tolist()).shape == (len(ep), 200, 3)
    assert (ep.reward < 0).any()                                         # energy was spent driving
    # flashes went through the store: the reset at begin and one per step, each applied by the TBox
    assert result["flash_applied"] >= 2 and result["flash_failed"] == 0 and tbox.stats["applied"] == result["flash_applied"]
    acts = np.stack(ep.action.tolist())
    assert np.array_equal(acts[-1], action)                              # the agent's action was in force at the last step
    assert set(np.unique(acts)) <= {0.0, np.float32(-0.4)}
