"""wrk as the load generator of bench/search (`--client wrk`), and the server's CPU from /proc.

wrk is a C client: 8 connections cost it a few percent of one core, where the Python client's
8 threads took a good part of the two cores the server was being measured on. Each wrk thread
sends its own slice of a query file (one request path a line), so every request of a unique
phase is a query no worker has seen; the report says if a thread ran out and wrapped around.

Server CPU per request = (utime + stime of the gunicorn master's live children, plus the
master's cutime + cstime, i.e. children that exited meanwhile) over the phase / requests, read
from /proc/<pid>/stat: what the workers spent, not wall time, so neither the client nor other
work on the machine is counted in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")

LUA = r"""
-- Each thread reads every n-th line of the query file (its own slice) and walks through it.
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
function init(args)
  local nthreads = tonumber(args[2])
  paths = {}
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == tid then paths[#paths + 1] = line end
    i = i + 1
  end
  counter = 0
  npaths = #paths
end
function request()
  counter = counter + 1
  return wrk.format("GET", paths[((counter - 1) % #paths) + 1])
end
function done(summary, latency, requests)
  local sent, slice = 0, 0
  for _, t in ipairs(threads) do
    local c = t:get("counter")
    local n = t:get("npaths")
    sent = sent + c
    if c > n then slice = slice + (c - n) end
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_s": %.3f, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, ' ..
    '"max_ms": %.2f, "mean_ms": %.2f, "wrapped": %d}\n',
    summary.requests, summary.duration / 1e6, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000, slice))
end
"""


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after its closing one
    return text[text.rindex(")") + 2 :].split()


def children(master: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[1]) == master:  # fields[1] = ppid
                out.append(int(entry))
    return out


def server_cpu_s(master: int) -> dict[str, float]:
    """CPU seconds so far: the live workers' own, and what exited workers left the master."""
    workers = 0
    for pid in children(master):
        fields = _stat(pid)
        if fields:
            workers += int(fields[11]) + int(fields[12])  # utime, stime
    fields = _stat(master) or ["0"] * 20
    reaped = int(fields[13]) + int(fields[14])  # cutime, cstime
    own = int(fields[11]) + int(fields[12])
    return {"workers": (workers + reaped) / CLK_TCK, "master": own / CLK_TCK}


def write_paths(path: Path, paths: list[str]) -> Path:
    path.write_text("".join(p + "\n" for p in paths))
    return path


def run_wrk(
    port: int,
    paths_file: Path,
    *,
    master: int,
    duration: int,
    connections: int = 8,
    threads: int = 2,
    script_dir: Path,
) -> dict:
    """One wrk phase: latency, throughput, errors, and the server's CPU per request."""
    script = script_dir / "bench-search-wrk.lua"
    script.write_text(LUA)
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
        "-s", str(script), f"http://127.0.0.1:{port}/", "--", str(paths_file), str(threads),
    ]  # fmt: skip
    before, wall0 = server_cpu_s(master), time.monotonic()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after, wall = server_cpu_s(master), time.monotonic() - wall0
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    requests = max(1, result["requests"])
    cpu = after["workers"] - before["workers"]
    result.update(
        rps=round(result["requests"] / result["duration_s"], 1),
        errors=sum(result[k] for k in ("connect", "read", "write", "status", "timeout")),
        server_cpu_s=round(cpu, 2),
        server_cpu_ms_per_request=round(cpu * 1000 / requests, 2),
        master_cpu_s=round(after["master"] - before["master"], 2),
        # CPU the workers kept busy: 2.0 = both cores of a 2-core box for the whole phase
        server_cores_busy=round(cpu / wall, 2),
        unique_paths=sum(1 for _ in paths_file.open()),
    )
    return result


# /proc/<pid>/smaps_rollup fields summed by `server_memory_mb`, and the names it reports them by.
SMAPS_FIELDS = {
    "Rss": "rss_mb", "Pss": "pss_mb", "Anonymous": "anon_mb",
    "Pss_Anon": "pss_anon_mb", "Pss_File": "pss_file_mb",
}  # fmt: skip


def server_memory_mb(master: int) -> dict[str, float]:
    """Memory of a process and its children, from /proc/<pid>/smaps_rollup: summed RSS (shared
    pages once per process: an upper bound), PSS (shared pages split between their users),
    Anonymous (a page shared copy-on-write after gunicorn's fork counts once per process), and PSS
    split into anonymous and file-backed pages (Pss_Anon: the private memory no page-cache
    reclaim gives back; Linux 5.10+)."""
    kb = dict.fromkeys(SMAPS_FIELDS, 0)
    for pid in [master, *children(master)]:
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            key, _, value = line.partition(":")
            if key in kb:
                kb[key] += int(value.split()[0])
    return {name: round(kb[key] / 1024) for key, name in SMAPS_FIELDS.items()}
