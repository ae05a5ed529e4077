"""Transfer learning in miniature, from the Python API: MNIST features -> Fashion-MNIST.

The same three steps as `poselab mnist train` and `poselab mnist transfer`:
1. train the classic CNN on MNIST digits (about 99.5% test accuracy in 3 epochs);
2. reuse its convolutional features on Fashion-MNIST with a new head: frozen, then fine-tuned
   at a tenth of the learning rate, against the same network from scratch, for growing numbers
   of labeled images;
3. look at the table, the plot (accuracy vs labels) and the confusion matrix.

This is what the pose model does with ImageNet backbones: pretrained features plus a new head.

Run from the repository root:
    python examples/mnist_transfer.py --mnist ../shared/data/mnist \
        --fashion ../shared/data/fashion-mnist
Add `--quick` for a one-minute version (subsets, one epoch).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from poselab.mnist import mnist


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, required=True, help="MNIST IDX folder")
    parser.add_argument("--fashion", type=Path, required=True, help="Fashion-MNIST IDX folder")
    parser.add_argument("--out", type=Path, default=Path("runs/mnist-example"))
    parser.add_argument("--quick", action="store_true", help="small subsets, one epoch")
    args = parser.parse_args()

    # 1. Source task: digits. The run folder holds checkpoint.pt (weights + normalization),
    #    config.yaml and metrics per epoch, so step 2 needs nothing but the folder.
    epochs = 1 if args.quick else 3
    run = mnist.train_mnist(args.mnist, epochs=epochs, out=args.out / "mnist",
                            limit=5000 if args.quick else None)
    for row in run["epochs"]:
        print(f"MNIST epoch {row['epoch']}: test accuracy {row['test_accuracy']:.2%} "
              f"({row['seconds']:.0f} s)")

    # 2. Target task: clothing. Same seeded, class-balanced label subsets for every variant.
    labels = [100, 1000] if args.quick else [100, 1000, 10000, "all"]
    result = mnist.transfer(run["run"], args.fashion, labels, out=args.out / "transfer",
                            epochs=epochs, test_limit=2000 if args.quick else None)

    # 3. Read the result: pretrained features win most where labels are few.
    print(mnist.format_table(result["table"]))
    best = result["best"]
    print(f"best transfer model: {best['variant']} with {best['labels']} labels, "
          f"{best['accuracy']:.2%}")
    print(f"plot: {result['plot']}\nconfusion matrix: {result['confusion_matrix']}")


if __name__ == "__main__":
    main()
