"""Drawing from files: label checks, learning curves, labeled videos, trajectory plots.

Depends only on io/: everything drawn here is read from a project, a run's files or a
predictions file, never from a model.
"""
