"""A folder of class folders of images, listed at once and decoded only when rows are read.

Listing reads each file's header (format, size; not its pixels), so an unreadable file or one
declaring a huge canvas is refused before anything runs; pixels are decoded, converted and resized
a batch at a time, so memory holds one batch of images, never the folder.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np

from edgepack.errors import DataError
from edgepack.loading.rows import Rows

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
MAX_IMAGE_PIXELS = 50_000_000
"""Largest image decoded from an image folder (50 megapixels, 150 MB as RGB): a small PNG or GIF can
declare a huge canvas ("decompression bomb"); larger images are refused before decoding."""


def _pil():
    from PIL import Image

    return Image


def _image_errors(Image) -> tuple:
    # PIL: UnidentifiedImageError (an OSError) for unknown bytes, the others for damaged ones
    return OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError


def _open(file: Path, Image):
    with warnings.catch_warnings():  # PIL warns past 89 MP; the check below refuses sooner
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        image = Image.open(file)
    if image.width * image.height > MAX_IMAGE_PIXELS:
        image.close()
        raise DataError(f"image {file} is {image.width}x{image.height} pixels, more than the "
                        f"{MAX_IMAGE_PIXELS:,} edgepack decodes", hint="resize it or remove it")
    return image


def image_size(file: Path) -> tuple[int, int]:
    """``(width, height)`` from the file's header, without decoding its pixels."""
    Image = _pil()
    try:
        with _open(file, Image) as image:
            return image.size
    except _image_errors(Image) as exc:
        raise DataError(f"cannot read image {file} ({exc})", hint="remove or replace the file") from None


def read_image(file: Path, size: tuple | None, channels: int) -> np.ndarray:
    """One image as float32 (height, width, channels), resized to ``size`` (width, height) if given."""
    Image = _pil()
    try:
        with _open(file, Image) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            if size is not None and image.size != size:
                image = image.resize(size, Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32)
    except _image_errors(Image) as exc:
        raise DataError(f"cannot read image {file} ({exc})", hint="remove or replace the file") from None
    return array[..., None] if channels == 1 else array


def list_images(path: Path) -> tuple[list[Path], np.ndarray, int]:
    """Image files of ``path/<class>/`` (classes in sorted order), their class indices, and how many
    files were skipped because their suffix is not an image's (``IMAGE_SUFFIXES``)."""
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{path} has no class subfolders",
                        hint="put the images of each class in a subfolder named after the class")
    files, labels, skipped = [], [], 0
    for label, name in enumerate(classes):
        for file in sorted((path / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                skipped += 1
                continue
            files.append(file)
            labels.append(label)
    if not files:
        raise DataError(f"{path} has class folders but no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files, np.asarray(labels, dtype=np.int64), skipped


class ImageRows(Rows):
    """The images of a folder as rows of float32 pixels (0-255), decoded when read. With ``size``
    None (the model takes any size) every image must have the first one's size."""

    def __init__(self, files: list[Path], source: str, size: tuple | None, channels: int):
        self.files, self.source, self.channels = files, source, channels
        sizes = {image_size(file): file for file in files}
        if size is None and len(sizes) > 1:
            shown = sorted(sizes)[:3]
            raise DataError(f"images in {source} have different sizes {[(h, w) for w, h in shown]}",
                            hint="resize them, or use a model with a fixed input size so edgepack can")
        self.size = size if size is not None else next(iter(sizes))

    def __len__(self) -> int:
        return len(self.files)

    @property
    def row_shape(self) -> tuple:
        width, height = self.size
        return (height, width, self.channels)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    def take(self, index: np.ndarray | slice) -> np.ndarray:
        positions = range(*index.indices(len(self))) if isinstance(index, slice) else index
        batch = np.empty((len(positions), *self.row_shape), np.float32)
        for slot, position in enumerate(positions):
            batch[slot] = read_image(self.files[int(position)], self.size, self.channels)
        return batch
