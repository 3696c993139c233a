"""Shared by the benchmarks: run a command, return wall seconds and peak RSS."""
import os
import resource
import subprocess
import sys
import time


def _peak_rss_kib(pid):
    """VmHWM: the high-water mark of the process's own memory (after exec, so
    not the forking Python's)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(cmd, stop=None, ok=(0,), interval=0.02, **kwargs):
    """Runs cmd, sampling its peak RSS from /proc every interval seconds.
    Returns (seconds, peak RSS in MiB, rusage, exit status, stdout, stderr).
    stop: polled at each sample; once it returns a time (time.monotonic()), the
    process is killed there and seconds ends at that time (a "time to" measure).
    An exit status outside ok raises SystemExit naming the command."""
    import signal
    import threading
    started = time.monotonic()
    # Output goes through pipes (a file would count as blocks written).
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    captured = {}
    readers = [threading.Thread(target=lambda k=k, f=f: captured.__setitem__(k, f.read()))
               for k, f in (("out", proc.stdout), ("err", proc.stderr))]
    for t in readers:
        t.start()
    peak, ended = 0, None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, _peak_rss_kib(proc.pid))
        ended = stop() if stop else None
        if ended:
            peak = max(peak, _peak_rss_kib(proc.pid))
            proc.send_signal(signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(interval)  # rare enough not to take a core from what is measured
    seconds = (ended or time.monotonic()) - started
    for t in readers:
        t.join()
    code = os.waitstatus_to_exitcode(status)
    if not ended and code not in ok:
        raise SystemExit(f"command failed (exit {code}): {' '.join(cmd)}\n{captured['err'].decode()}")
    return seconds, peak / 1024.0, usage, code, captured["out"], captured["err"]


def measure_full(cmd, **kwargs):
    """Runs cmd and returns (seconds, peak RSS in MiB, blocks written to disk,
    stdout). The peak is sampled from /proc until the process exits; blocks
    written come from the child's rusage."""
    seconds, peak, usage, _, out, _ = run_measured(cmd, **kwargs)
    return seconds, peak, usage.ru_oublock, out


def measure(cmd, **kwargs):
    """(seconds, peak RSS in MiB, stdout) of cmd."""
    seconds, rss, _, out = measure_full(cmd, **kwargs)
    return seconds, rss, out


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
