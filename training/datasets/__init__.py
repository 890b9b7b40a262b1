"""Datasets shipped with the package, so the main job runs wherever the package is installed.

``penguins.csv``: the Palmer penguins (CC0; provenance in this folder's README.md).
"""

from pathlib import Path

PENGUINS = Path(__file__).with_name("penguins.csv")
