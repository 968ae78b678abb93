"""Readers of the published dataset formats (VOC XML, YOLO txt, COCO,
Ultralytics YAML, Severstal CSV, polygon JSON exports, keypoint CSV and
COCO keypoints, MVTec AD, image folders) and the RLE they use."""
