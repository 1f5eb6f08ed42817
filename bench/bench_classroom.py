"""A class on one machine: N students, each with a FilterDesigner and a ThresholdSegmenter in their own kernel.

Each simulated student is one IPython kernel (started with jupyter_client, as a Jupyter server starts it) that
shows the two widgets. Every 1–3 s (random, seeded) the student moves a slider the way a browser does: a
``comm_msg`` "update" of the slider's model is sent to the kernel, and the time runs until the kernel sends the
new picture (the ``update`` of the result image's model, with its PNG bytes) back on IOPub.

Why kernels and not JupyterHub: the kernels are what hold the memory and the CPU of a class; a hub adds one
proxy and one single-user server per student (about 100 MiB each, measured separately in docs/classroom.md) and
a WebSocket hop that takes well under a millisecond on loopback. Driving the kernels directly keeps the bench
to what it measures.

    python bench/bench_classroom.py --students 20 --seconds 180
    python bench/bench_classroom.py --sweep 10,20,30 --seconds 90      # the largest N with p95 < 500 ms

It prints one line per run and a JSON line: peak memory in total (the sum of the kernels' proportional set
sizes, sampled every second) and per student (VmHWM of each kernel), p50/p95 of control-to-picture latency, and
the kernels lost.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import queue
import random
import statistics
import sys
import threading
import time
from pathlib import Path

SETUP = """
import json as _json
from cnnwidgets import FilterDesigner as _FD, ThresholdSegmenter as _TS, sample as _sample
_f = _FD(_sample("camera"))
_t = _TS(_sample("coins"), method="fixed")
_f.wait(); _t.wait()
_cnnw_ids = _json.dumps({
    "f_control": _f.controls["cutoff"].model_id, "f_picture": _f.p_result.image.model_id,
    "t_control": _t.controls["value"].model_id, "t_picture": _t.mask_panel.image.model_id,
    "f_value": _f.controls["cutoff"].value, "t_value": _t.controls["value"].value,
})
"""

CONTROLS = {  # which slider each widget moves, and the values it takes
    "f": [round(0.02 + 0.01 * i, 3) for i in range(40)],
    "t": [float(v) for v in range(40, 220, 3)],
}


def vm_hwm_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Student:
    """One kernel with the two widgets, and the thread that moves their sliders."""

    def __init__(self, i: int, seed: int, env: dict):
        from jupyter_client.manager import KernelManager

        self.i = i
        self.rng = random.Random(seed * 1000 + i)
        self.km = KernelManager(kernel_name="python3", transport="ipc", ip=f"/tmp/cnnw-class-{os.getpid()}-{i}")
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=300)
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.ids: dict = {}
        self.last: dict = {}

    def setup(self) -> None:
        msg_id = self.kc.execute(SETUP, user_expressions={"ids": "_cnnw_ids"}, store_history=False)
        reply = self.kc.get_shell_msg(timeout=600)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=600)
        content = reply["content"]
        if content["status"] != "ok":
            raise RuntimeError(f"student {self.i}: setup failed: {content.get('ename')}: {content.get('evalue')}")
        data = content["user_expressions"]["ids"]["data"]["text/plain"]
        self.ids = json.loads(ast.literal_eval(data))  # the repr of a JSON str
        self.last = {"f": self.ids["f_value"], "t": self.ids["t_value"]}
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                self.kc.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                return

    def move(self, which: str) -> float:
        """Send one slider update as a browser would; seconds until the new picture arrives."""
        control, picture = self.ids[f"{which}_control"], self.ids[f"{which}_picture"]
        value = self.rng.choice([v for v in CONTROLS[which] if v != self.last.get(which)])  # a change: a new picture
        self.last[which] = value
        msg = self.kc.session.msg(
            "comm_msg",
            {"comm_id": control, "data": {"method": "update", "state": {"value": value}, "buffer_paths": []}},
        )
        start = time.perf_counter()
        self.kc.session.send(self.kc.shell_channel.socket, msg)
        deadline = start + 30
        while time.perf_counter() < deadline:
            try:
                m = self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if m["msg_type"] != "comm_msg" or m["content"].get("comm_id") != picture:
                continue
            data = m["content"].get("data", {})
            if data.get("method") == "update" and ("value" in data.get("state", {}) or data.get("buffer_paths")):
                return time.perf_counter() - start
        raise TimeoutError(f"student {self.i}: no new picture within 30 s")

    def run(self, until: float) -> None:
        which = "f"
        while time.perf_counter() < until:
            time.sleep(self.rng.uniform(1.0, 3.0))
            if not self.km.is_alive():
                self.errors.append("kernel died")
                return
            try:
                self.latencies.append(self.move(which))
            except Exception as exc:  # a lost picture is counted, the student goes on
                self.errors.append(str(exc))
            which = "t" if which == "f" else "f"

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def pss_total(pids: list[int]) -> float:
    import psutil

    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_full_info().pss
        except (psutil.Error, AttributeError):
            continue
    return total / 2**20


def run_class(n: int, seconds: float, seed: int, threads: int) -> dict:
    env = dict(os.environ, CNNWIDGETS_THREADS=str(threads), CNNWIDGETS_DEVICE="cpu", OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    students = [Student(i, seed, env) for i in range(n)]
    for s in students:
        s.setup()
    ready = time.perf_counter() - t0
    pids = [s.km.provisioner.process.pid for s in students]
    peak = [pss_total(pids)]
    stop = threading.Event()

    def sample_memory():
        while not stop.wait(1.0):
            peak[0] = max(peak[0], pss_total(pids))

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    until = time.perf_counter() + seconds
    workers = [threading.Thread(target=s.run, args=(until,)) for s in students]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    sampler.join()
    lost = sum(1 for s in students if not s.km.is_alive())
    per_student = [vm_hwm_mib(pid) for pid in pids]
    lat = sorted(x for s in students for x in s.latencies)
    errors = [e for s in students for e in s.errors]
    for s in students:
        s.close()
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {
        "students": n,
        "seconds": seconds,
        "ready_s": round(ready, 1),
        "moves": len(lat),
        "p50_ms": round(1000 * statistics.median(lat), 1) if lat else None,
        "p95_ms": round(1000 * q[94], 1),
        "kernels_lost": lost,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "peak_total_pss_mib": round(peak[0], 1),
        "peak_per_student_vmhwm_mib": round(max(per_student), 1),
        "median_per_student_vmhwm_mib": round(statistics.median(per_student), 1),
        "load_average": os.getloadavg(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--seconds", type=float, default=180.0, help="how long the class moves sliders")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CNNWIDGETS_THREADS of each kernel (1 on shared servers)")
    p.add_argument("--sweep", default="", help="comma-separated class sizes, run one after another")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sweep.split(",") if s.strip()] or [args.students]
    flags = sorted(
        {f for f in Path("/proc/cpuinfo").read_text().split() if f in ("avx2", "avx512f", "avx512_vnni", "amx_int8")}
    )
    results = []
    for n in sizes:
        r = run_class(n, args.seconds, args.seed, args.threads)
        r["cpu_flags"] = flags
        results.append(r)
        print(
            f"{n} students: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms over {r['moves']} moves; "
            f"{r['kernels_lost']} kernels lost; peak total {r['peak_total_pss_mib']:.0f} MiB (PSS), "
            f"per student ≤ {r['peak_per_student_vmhwm_mib']:.0f} MiB (VmHWM); load {r['load_average'][0]:.1f}",
            flush=True,
        )
    ok = [r["students"] for r in results if r["p95_ms"] < 500 and r["kernels_lost"] == 0]
    print(json.dumps({"bench": "classroom", "runs": results, "largest_n_p95_under_500ms": max(ok) if ok else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
