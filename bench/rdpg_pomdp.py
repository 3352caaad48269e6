"""RDPG against DDPG on a partially observed Pendulum: now a thin wrapper of `seq_pomdp.py`, which also trains the Transformer agent.

Runs `seq_pomdp.py` with `--agents ddpg rdpg` unless other agents are named; every option of `seq_pomdp.py` applies,
and the old `--only ddpg|rdpg` still works:
    python bench/rdpg_pomdp.py --steps 10000 --seeds 0
"""
from __future__ import annotations
import os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seq_pomdp import main

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--only" in argv:
        argv[argv.index("--only")] = "--agents"
    sys.argv[1:] = argv
    sys.exit(main(default_agents=("ddpg", "rdpg")))
