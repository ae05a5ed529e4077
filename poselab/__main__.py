"""`python -m poselab ...` (also what `torchrun -m poselab` runs)."""

from poselab.cli import main

main()
