"""Datasets: one entry per family (anomaly, classification, detection,
keypoints, segmentation: `datasets(config.data)` -> sources and
transforms), the grain pipeline, the data check and the readers' shared
parts; format readers in `formats/`, embedded generators in `embedded/`,
image operations and augmentation in `augment/`."""
