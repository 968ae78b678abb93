"""The embedded datasets every config runs on without a download: the
generated parts, beads, steel strips, car panels and scratches, and the
texture photographs the anomaly set is cut from."""
