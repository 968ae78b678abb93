"""Random-access sources (grain-ready) over annotation records on disk."""
from vq.data.images import read_image


class AnnotatedImages:
  """Loads each record's image lazily: records hold `image_path`."""

  def __init__(self, records):
    self.records = list(records)

  def __len__(self):
    return len(self.records)

  def __getitem__(self, index):
    record = dict(self.records[index])
    record["image"] = read_image(record.pop("image_path"))
    return record
