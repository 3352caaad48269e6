"""How long `import tspace` and the config layer take, next to a bare interpreter start measured in the same run.

Run: python bench/import_time.py   (target: `import tspace.config.run` under 2 s on a 2-core machine)
"""
import subprocess, sys, time


def best_of(code: str, n: int = 5) -> float:
    subprocess.run([sys.executable, "-c", code], check=True)  # warm the file cache first
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t)
    return min(times)


if __name__ == "__main__":
    base = best_of("pass")
    for stmt in ("import tspace", "import tspace.config.run", "import tspace.cli.main"):
        t = best_of(stmt)
        print(f"{stmt:<28} {t:6.3f} s   ({t / base:5.1f} x a bare interpreter start of {base:.3f} s)")
