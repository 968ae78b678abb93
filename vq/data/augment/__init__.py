"""Image operations of the transforms: geometry and letterboxing, the
augmentation of images with their boxes, masks and keypoints, host-side
preprocessing, and DRAEM's synthetic anomalies (Perlin noise)."""
