"""The transfer-learning warmup: the classic MNIST CNN (mnist.py) and the IDX reader (data.py)."""
