"""Benchmark the MNIST warmup: accuracy and seconds per epoch, then the transfer table.

Target (docs: performance.md): >= 99.2% MNIST test accuracy within 3 epochs, minutes on a
2-core CPU. Prints a line per epoch, the transfer table, and a final JSON line with every
figure. Run from the repository root (keep the machine otherwise quiet):

    python benchmarks/bench_mnist.py --mnist ../shared/data/mnist \
        --fashion ../shared/data/fashion-mnist

The baseline row trains the same network with the plain recipe (constant Adam lr 1e-3, no
augmentation, fp32), in the same run, so the recipe's effect is measured on the same machine
state; skip it with --no-baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from poselab.mnist import mnist


def matmul_gflops(seconds: float = 1.0) -> float:
    """A same-run fp32 matmul rate, so epoch times can be read against the machine's state."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, default=Path("../shared/data/mnist"))
    parser.add_argument("--fashion", type=Path, default=Path("../shared/data/fashion-mnist"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--labels", default="100,1000,10000,all")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    # One intra-op thread per core: more threads than cores only adds contention.
    torch.set_num_threads(args.threads)
    gflops = matmul_gflops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, matmul {gflops:.0f} GFLOP/s, "
          f"load average {os.getloadavg()[0]:.1f}")
    # The load average and matmul rate at both ends say how busy the (shared) machine was.
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(),
              "matmul_gflops_start": round(gflops, 1),
              "loadavg_start": round(os.getloadavg()[0], 2)}

    runs = {"recipe": mnist.MnistRecipe()}
    if not args.no_baseline:
        runs["plain"] = mnist.MnistRecipe(lr=1e-3, schedule="constant", shift=0, bf16=False)
    with tempfile.TemporaryDirectory() as tmp:
        for name, recipe in runs.items():
            result = mnist.train_mnist(args.mnist, epochs=args.epochs, out=Path(tmp) / name,
                                       recipe=recipe, progress=False)
            for row in result["epochs"]:
                print(f"{name} epoch {row['epoch']}: test accuracy {row['test_accuracy']:.2%}, "
                      f"{row['seconds']:.1f} s train + {row['eval_seconds']:.1f} s test, "
                      f"{result['n_train'] / row['seconds']:.0f} images/s")
            report[name] = {
                "recipe": vars(recipe),
                "test_accuracy": [round(r["test_accuracy"], 4) for r in result["epochs"]],
                "seconds_per_epoch": [round(r["seconds"], 1) for r in result["epochs"]],
                "total_seconds": round(result["seconds"], 1),
            }
        start = time.perf_counter()
        transfer = mnist.transfer(Path(tmp) / "recipe", args.fashion, args.labels.split(","),
                                  out=Path(tmp) / "transfer", epochs=args.epochs, progress=False)
        print(mnist.format_table(transfer["table"]))
        report["transfer"] = [{k: round(v, 4) if isinstance(v, float) else v
                               for k, v in row.items()} for row in transfer["table"]]
        report["transfer_seconds"] = round(time.perf_counter() - start, 1)
        report["transfer_best"] = transfer["best"]
    report["matmul_gflops_end"] = round(matmul_gflops(), 1)
    report["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
