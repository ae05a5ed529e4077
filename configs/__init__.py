"""Training presets (YAML), installed as the package `poselab.configs`."""
