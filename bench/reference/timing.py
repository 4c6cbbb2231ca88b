"""Helpers shared by the PyTorch reference benchmarks (gpt_torch.py, biggan_torch.py): their
command line and the timing loop, so both measure the way `smyrf bench` does (one warm-up run,
then timed runs; wall time and the process's CPU time of all threads, which stays meaningful on a
loaded host).

Import it from a script in this folder (`import timing`: the script's folder is on sys.path).
"""
import time


def parse_args(argv, default_repeats=3):
    """`[--threads N] [--repeats R] CASE...` -> (threads, repeats, cases); threads default 2."""
    threads, repeats, cases = 2, default_repeats, []
    i = 0
    while i < len(argv):
        if argv[i] in ("--threads", "--repeats") and i + 1 < len(argv):
            value = int(argv[i + 1])
            if argv[i] == "--threads":
                threads = value
            else:
                repeats = value
            i += 2
        else:
            cases.append(argv[i])
            i += 1
    return threads, repeats, cases


def time_runs(fn, repeats):
    """fn() once as a warm-up (allocations, optimizer state), then `repeats` timed calls.
    Returns (wall_ms, cpu_ms): one entry per timed call; cpu_ms is user + system time of all
    threads of the process."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return wall, cpu
