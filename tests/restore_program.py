"""`tspace run --infer` on a truck tspace does not simulate, whose frame pump raises once the agent's first torque rows
reached the VCU (the episode's reset and two actions written): the run must still restore the stock map (tests/test_flash_restore.py).

Usage: python restore_program.py CONFIG DATA CHECKPOINT
"""
import sys, threading
from tspace.avatar import Avatar
from tspace.config.run import load_config
from tspace.system.errors import TspaceError
from tspace.system.log import setup_logging


class InjectedFault(TspaceError): "The failure this test asks for."


def fail_after_first_write(name, fn):
    if name != "frames": return fn
    def failing(stop):
        inner = threading.Event()
        pump = threading.Thread(target=fn, args=(inner,), daemon=True)
        pump.start()
        while avatar.flash.stats["written"] < 3 and not stop.is_set(): stop.wait(0.05)
        inner.set()
        pump.join(5.0)
        raise InjectedFault("the frame pump was asked to fail after the agent's torque rows were written")
    return failing


setup_logging("INFO")
config, data, checkpoint = sys.argv[1:4]
avatar = Avatar(load_config(config), episodes=1, infer=True, checkpoint=checkpoint, data=data, plots=False, progress=False,
                wrap_worker=fail_after_first_write)
sys.exit(avatar.run())
