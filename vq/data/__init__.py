"""Datasets: readers for real formats, embedded generators, grain pipelines."""
