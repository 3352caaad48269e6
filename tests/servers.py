"""Real servers for tests: a free local port, a server binary by name, and a mosquitto broker started on 127.0.0.1 with a
generated config on a free port and stopped afterwards
(`.ci/apt-packages` installs the Debian package `mosquitto`)."""
import shutil, socket, subprocess, time
from pathlib import Path

import pytest


def wait_until(condition, timeout: float = 10.0, what: str = "the condition") -> None:
    "Return as soon as `condition()` is true; fail the test naming `what` after `timeout` s."
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline: pytest.fail(f"{what} did not happen within {timeout:g} s", pytrace=False)
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name: str) -> str:
    found = shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None)
    if not found:
        pytest.fail(f"{name} not found (PATH, /usr/sbin, /usr/bin): the MQTT tests need a real broker; install the Debian "
                    f"package 'mosquitto' (listed in .ci/apt-packages)", pytrace=False)
    return found


class Mosquitto:
    "A mosquitto broker on 127.0.0.1:`port` with a generated config; `users` = {name: password} turns anonymous access off."
    def __init__(self, folder: Path, port: int | None = None, users: dict | None = None):
        self.port, self.folder = port or free_port(), folder
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr", "user root"]
        if users:
            pw = folder / "passwd"
            pw.write_text("")
            for u, p in users.items():
                subprocess.run([binary("mosquitto_passwd"), "-b", str(pw), u, p], check=True, capture_output=True)
            pw.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else: lines.append("allow_anonymous true")
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.conf.chmod(0o600)
        self.proc = None

    def start(self) -> "Mosquitto":
        self.proc = subprocess.Popen([binary("mosquitto"), "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode}): {self.proc.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline: raise RuntimeError(f"mosquitto does not listen on 127.0.0.1:{self.port}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
