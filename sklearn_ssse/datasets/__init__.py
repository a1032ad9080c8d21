"""Data set loaders: Mulan multi-label ARFF files and the bundled yeast data set."""

from ._mulan import load_mulan, load_yeast

__all__ = ["load_mulan", "load_yeast"]
