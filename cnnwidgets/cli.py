"""Command line: index a folder, search an index.

    cnnwidgets index FOLDER --index DIR [--descriptors cnn,color] [--captions CSV] [--index-type auto]
                     [--executor local|ray] [--ray-address ADDRESS] [--workers N] [--gpus-per-worker G]
    cnnwidgets search --index DIR (--text "..." | --image PATH) [--mode MODE] [--rerank R] [-k K] [--json]

Also available as ``python -m cnnwidgets``. Bad input ends with exit status 2 and one line on stderr:
``cnnwidgets: error: <what is wrong>``.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the whole usage text
        raise _CliError(message)


class _CliError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    from .index.image_index import DESCRIPTORS, MODES
    from .index.vectors import INDEX_TYPES

    p = _Parser(
        prog="cnnwidgets",
        description="Index image folders and search them by text, colour or CNN features; write the tutorials as an nbgrader course.",
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ix = sub.add_parser("index", help="index a folder of images")
    ix.add_argument("folder", help="folder of images (searched recursively)")
    ix.add_argument("--index", required=True, dest="index_dir", help="folder to write the index to")
    ix.add_argument(
        "--descriptors", default="cnn,color", help=f"comma-separated, from {','.join(DESCRIPTORS)} (default cnn,color)"
    )
    ix.add_argument(
        "--captions", default=None, help="CSV with columns path,caption (default: FOLDER/captions.csv if present)"
    )
    ix.add_argument("--index-type", default="auto", choices=INDEX_TYPES, help="FAISS structure (default auto)")
    ix.add_argument("--model", default="efficientnet_lite0", help="CNN for the cnn descriptor and tags")
    ix.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "int8", "bf16", "auto"),
        help="CNN precision: int8 runs its checked int8 ONNX Runtime export; auto picks int8 on VNNI/AMX CPUs "
        "where it is faster (default fp32)",
    )
    ix.add_argument("--quiet", action="store_true", help="no progress bar")
    ix.add_argument(
        "--executor", default="local", choices=("local", "ray"), help="where images are described (default local)"
    )
    ix.add_argument("--ray-address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else a local one)")
    ix.add_argument("--workers", type=int, default=None, help="Ray actors (default: the cluster's CPUs or GPUs)")
    ix.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs per Ray actor (default 0)")
    ix.add_argument("--batch-size", type=int, default=32, help="files per batch (default 32)")
    se = sub.add_parser("search", help="search an index")
    se.add_argument("--index", required=True, dest="index_dir", help="index folder written by 'cnnwidgets index'")
    q = se.add_mutually_exclusive_group(required=True)
    q.add_argument("--text", help="words to search for")
    q.add_argument("--image", help="example image file")
    se.add_argument("--mode", default="auto", choices=MODES, help="search mode (default auto)")
    se.add_argument(
        "--rerank", default=None, choices=("qe", "diffusion", "kreciprocal"), help="re-rank an image query's results"
    )
    se.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    se.add_argument("--json", action="store_true", help="print a JSON list of {path, score, scores, tags, caption}")
    co = sub.add_parser("course", help="write the tutorials as an nbgrader course")
    co.add_argument("folder", help="the course's root folder (nbgrader_config.py and source/ are written there)")
    co.add_argument("--notebooks", default=None, help="comma-separated tutorial numbers, e.g. 01,03 (default all)")
    co.add_argument("--points", type=int, default=1, help="points of each autograded test cell (default 1)")
    return p


def _executor(args):
    """The executor the ``index`` flags ask for; Ray flags without ``--executor ray`` are an error."""
    from .index.executors import LocalExecutor, RayExecutor

    for flag, value in (("--workers", args.workers), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise _CliError(f"{flag} {value}: expected a positive number")
    if args.executor == "local":
        given = [f for f, v in (("--ray-address", args.ray_address), ("--workers", args.workers)) if v is not None]
        if args.gpus_per_worker:
            given.append("--gpus-per-worker")
        if given:
            raise _CliError(f"{', '.join(given)} need --executor ray")
        return LocalExecutor(batch_size=args.batch_size)
    if args.gpus_per_worker < 0:
        raise _CliError(f"--gpus-per-worker {args.gpus_per_worker}: expected 0 or more")
    RayExecutor._ray()
    return RayExecutor(
        address=args.ray_address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        batch_size=args.batch_size,
    )


def _run(args) -> int:
    from pathlib import Path

    from .index import ImageIndex

    if args.command == "course":
        from .exercises import write_course

        numbers = [n.strip() for n in args.notebooks.split(",") if n.strip()] if args.notebooks else None
        root = write_course(args.folder, notebooks=numbers, points=args.points)
        written = sorted(p.name for p in (root / "source").iterdir() if p.is_dir())
        print(
            f"wrote the nbgrader course {root} ({', '.join(written)}); next: cd {root}; nbgrader generate_assignment NAME"
        )
        return 0
    if args.command == "index":
        folder = Path(args.folder)
        if not folder.is_dir():
            raise _CliError(f"{folder}: {'not a folder' if folder.exists() else 'folder not found'}")
        descriptors = tuple(d.strip() for d in args.descriptors.split(",") if d.strip())
        index = ImageIndex.build(
            folder,
            path=args.index_dir,
            descriptors=descriptors,
            captions=args.captions,
            index_type=args.index_type,
            model=args.model,
            progress=not args.quiet,
            executor=_executor(args),
            precision=args.precision,
        )
        print(
            f"indexed {len(index)} images into {args.index_dir} ({', '.join(index.descriptors)}); skipped {len(index.skipped)}"
        )
        for path, why in index.skipped:
            print(f"  skipped {path}: {why}")
        return 0
    if args.k < 1:
        raise _CliError(f"-k {args.k}: expected a positive number")
    if args.image is not None and not Path(args.image).is_file():
        raise _CliError(f"{args.image}: image file not found")
    index = ImageIndex.load(args.index_dir, progress=False)
    hits = index.search(text=args.text, image=args.image, mode=args.mode, k=args.k, rerank=args.rerank)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=1))
    else:
        for rank, h in enumerate(hits, 1):
            tags = ", ".join(t for t, _ in h.tags[:3])
            print(f"{rank:3d}  {h.score:7.4f}  {h.path}  [{tags}]")
    return 0


def main(argv=None) -> int:
    """Entry point of the ``cnnwidgets`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except _CliError as exc:
        print(f"cnnwidgets: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError, TypeError, ImportError) as exc:
        print(f"cnnwidgets: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cnnwidgets: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
