"""Shared by the benchmarks: run a command, return wall seconds and peak RSS."""
import os
import resource
import subprocess
import sys
import time


def measure(cmd, **kwargs):
    """Runs cmd in a fresh child (via a tiny wrapper, so RUSAGE_CHILDREN covers
    only it) and returns (seconds, peak RSS in MiB, stdout)."""
    wrapper = ("import resource,subprocess,sys,time;"
               "t=time.monotonic();p=subprocess.run(sys.argv[1:],stdout=subprocess.PIPE);"
               "dt=time.monotonic()-t;"
               "sys.stderr.write('%f %d\\n'%(dt,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss));"
               "sys.stdout.buffer.write(p.stdout);sys.exit(p.returncode)")
    r = subprocess.run([sys.executable, "-c", wrapper] + list(cmd), capture_output=True, **kwargs)
    if r.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}\n{r.stderr.decode()}")
    seconds, rss_kib = r.stderr.decode().strip().splitlines()[-1].split()
    return float(seconds), int(rss_kib) / 1024.0, r.stdout


def best_of(n, cmd, **kwargs):
    """The fastest of n runs (after one warm-up), with the largest peak RSS seen."""
    measure(cmd, **kwargs)
    runs = [measure(cmd, **kwargs) for _ in range(n)]
    return min(r[0] for r in runs), max(r[1] for r in runs), runs[0][2]


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"
