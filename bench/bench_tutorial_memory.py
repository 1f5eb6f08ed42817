"""Peak resident memory of a fresh kernel running each tutorial top to bottom, as a student runs it.

    python bench/bench_tutorial_memory.py                      # every notebooks/NN_*.ipynb
    python bench/bench_tutorial_memory.py 00 01 02             # some of them

Each notebook runs in a new kernel (nbclient, the kernel spec "python3", CNNWIDGETS_DEVICE=cpu); after its last
cell the kernel reports its own ``VmHWM`` (/proc/self/status) and which of torch, timm, sentence_transformers,
onnxruntime and faiss it imported. One line per notebook, then a JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import sys as _s, json as _j
_hwm = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0]) / 1024
print(_j.dumps({'vmhwm_mib': round(_hwm, 1),
                'imported': [m for m in ('torch', 'timm', 'sentence_transformers', 'onnxruntime', 'faiss')
                             if m in _s.modules]}))
"""


def measure(path: Path, timeout: int = 1200) -> dict:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    os.environ.setdefault("CNNWIDGETS_DEVICE", "cpu")
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    out = nb.cells[-1].outputs[-1]["text"]
    return {"notebook": path.name, "seconds": round(seconds, 1), **json.loads(out.strip().splitlines()[-1])}


def main(argv=None) -> int:
    wanted = (argv if argv is not None else sys.argv[1:]) or None
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if wanted:
        notebooks = [p for p in notebooks if p.name[:2] in wanted]
    rows = []
    for path in notebooks:
        row = measure(path)
        rows.append(row)
        print(f"{row['notebook']}: {row['vmhwm_mib']:.0f} MiB peak, {row['seconds']} s, imports {row['imported']}")
    print(json.dumps({"bench": "tutorial_memory", "rows": rows, "load_average": os.getloadavg()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
