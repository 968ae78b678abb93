"""Random-access sources (grain-ready) over annotation records on disk."""
from vq.data.images import read_image


class RecordSource:
  """A list of records with random access; subclasses load one in
  `__getitem__`."""

  def __init__(self, records):
    self.records = list(records)

  def __len__(self):
    return len(self.records)


class AnnotatedImages(RecordSource):
  """Loads each record's image lazily: records hold `image_path`."""

  def __getitem__(self, index):
    record = dict(self.records[index])
    record["image"] = read_image(record.pop("image_path"))
    return record


class GeneratedSource:
  """`num_records` images drawn by `generate(seed, index, image_size,
  **generate_kwargs)`."""

  def __init__(self, generate, num_records, seed, image_size,
               **generate_kwargs):
    self.generate = generate
    self.num_records = num_records
    self.seed = seed
    self.image_size = image_size
    self.generate_kwargs = generate_kwargs

  def __len__(self):
    return self.num_records

  def __getitem__(self, index):
    return self.generate(self.seed, index, self.image_size,
                         **self.generate_kwargs)
