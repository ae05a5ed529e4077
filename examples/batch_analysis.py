"""Analyze many videos on a Dask cluster with the batch API (`poselab.analyze_videos`).

`analyze_videos(run, videos, executor=...)` accepts any concurrent.futures.Executor. Dask's
`client.get_executor()` is one: here a LocalCluster on this machine, but the same script
drives a real cluster (SLURM, Kubernetes, ...) by pointing `Client` at its scheduler
address instead. Each worker loads the model once and analyzes one video per task; a failing
video is named at the end and does not lose the others' results.

Needs Dask (not a poselab dependency):
    pip install "dask[distributed]"

Run from the repository root:
    python examples/batch_analysis.py models/<run> videos/ --workers 2 --dest results
Videos may be files or folders (their video files). Outputs: `<stem><scorer>.h5` and
`<stem><scorer>_meta.json` per video; videos already analyzed are skipped.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import poselab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run dir (models/<run>)")
    parser.add_argument("videos", type=Path, nargs="+", help="video files and/or folders")
    parser.add_argument("--dest", type=Path, default=None, help="output folder")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default: cores / workers)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--scheduler", default=None,
                        help="address of a running Dask scheduler (default: a LocalCluster)")
    args = parser.parse_args()

    from dask.distributed import Client, LocalCluster

    # One process per worker, one Dask thread each: torch parallelizes inside the process, so
    # more Dask threads would only make workers fight over cores.
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # inherited by the worker processes
    cluster = None
    if args.scheduler is None:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True)
    client = Client(args.scheduler or cluster)
    print(f"Dask dashboard: {client.dashboard_link}")
    failed = None
    try:
        written = poselab.analyze_videos(args.run, args.videos, dest=args.dest,
                                         # tasks write files: never dedupe them
                                         executor=client.get_executor(pure=False),
                                         batch_size=args.batch_size, device=args.device)
    except poselab.PoselabError as exc:
        # AnalysisError lists every failed video; `written` holds the others' outputs.
        written, failed = getattr(exc, "written", []), exc
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    for path in written:
        print(path)
    if failed is not None:
        raise SystemExit(f"error: {failed}")


if __name__ == "__main__":
    main()
