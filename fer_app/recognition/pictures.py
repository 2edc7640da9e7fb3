"""Open picture files safely and turn any picture into 8-bit values.

    rgb = read_image("photo.jpg")            # (H, W, 3) uint8, upright by its EXIF tag
    rgb = pil_to_array(Image.open(...))      # the same for an opened PIL image
    grey8 = as_uint8(depth16)                # any numeric array -> uint8 0..255

Two things a plain ``Image.open(path).convert("RGB")`` gets wrong:

* **16-bit and float pictures** (PIL modes "I;16", "I;16B", "I;16L", "I", "F"; a
  16-bit grey PNG or TIFF) are clipped by PIL to 0..255, so almost every pixel
  turns white and no face is found. They are scaled instead, by the range their
  values can have (:func:`full_scale`): uint16 by 65535 (the dtype's range);
  int32 ("I", which PIL uses for 16-bit PGM and older 16-bit PNG readers) and
  floats by the smallest of 255 / 65535 that holds the picture's largest value
  (floats: 1.0 first). The image's own maximum is used only when the values pass
  65535 (an int32 or float picture of unknown depth). Scaling by the picture's own
  maximum in every case would brighten a dark picture, unlike its 8-bit twin. (So a
  0..255 float array that overshoots 255, as after cubic resampling, reads as
  16-bit: clip it first.)
* **Decompression bombs**: a 100 kB PNG can declare 30000 x 30000 pixels (2.7 GB
  as RGB). The size in the header is checked before any pixel is decoded
  (:data:`MAX_PIXELS`), and PIL's own DecompressionBombWarning/Error become the
  same :class:`PictureError`.
"""
from __future__ import annotations

import warnings

import numpy
from PIL import Image, ImageOps

MAX_PIXELS = 40_000_000  # largest picture decoded (width x height): 120 MB as RGB
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class PictureError(ValueError):
    """A picture that is too large to decode or has pixel values that are not numbers."""


def read_image(path, max_pixels: int = MAX_PIXELS) -> numpy.ndarray:
    """Read a picture file as an (H, W, 3) RGB uint8 array, turned upright by its EXIF tag.

    Raises PictureError for a picture over ``max_pixels`` (checked from the header,
    before decoding) and OSError / PIL.UnidentifiedImageError for a file that is not one.
    """
    with open_image(path, max_pixels) as picture:
        return pil_to_array(picture)


def open_image(source, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """``Image.open(source)`` that refuses a picture over ``max_pixels`` with a
    PictureError before its pixels are decoded (PIL reads only the header here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            picture = Image.open(source)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise PictureError(f"picture too large to decode: {error}") from None
    try:
        check_size(picture, max_pixels)
    except PictureError:
        picture.close()
        raise
    return picture


def check_size(picture: Image.Image, max_pixels: int = MAX_PIXELS) -> None:
    """PictureError when ``picture`` declares more than ``max_pixels`` pixels."""
    width, height = picture.size
    if width * height > max_pixels:
        raise PictureError(f"picture too large: {width}x{height} pixels "
                           f"(limit {max_pixels / 1e6:g} megapixels)")


def pil_to_array(picture: Image.Image) -> numpy.ndarray:
    """PIL image -> (H, W, 3) RGB uint8, applying the EXIF orientation tag (phone
    photos); 16-bit and float grey pictures are scaled to 0..255 (see :func:`to_8bit`).
    The caller checks the size first (:func:`open_image`, :func:`check_size`)."""
    upright = ImageOps.exif_transpose(picture)
    return numpy.asarray(to_8bit(upright).convert("RGB"))


def to_8bit(picture: Image.Image) -> Image.Image:
    """A 16-bit, int32 or float grey picture as an "L" picture scaled by :func:`as_uint8`;
    any other picture unchanged."""
    if picture.mode not in HIGH_DEPTH_MODES:
        return picture
    return Image.fromarray(as_uint8(numpy.asarray(picture)))


def as_uint8(image: numpy.ndarray) -> numpy.ndarray:
    """Any numeric array -> uint8 0..255: values * 255 / full_scale(image), rounded;
    negative values become 0."""
    if image.dtype == numpy.uint8:
        return image
    if image.dtype == numpy.bool_ or not numpy.issubdtype(image.dtype, numpy.number):
        raise PictureError(f"expected a numeric image array, got dtype {image.dtype}")
    values = image.astype(numpy.float64)
    if values.size and not numpy.isfinite(values).all():
        raise PictureError("the image holds NaN or infinite values")
    values = values * (255.0 / full_scale(image))
    return numpy.clip(numpy.rint(values), 0, 255).astype(numpy.uint8)


def full_scale(image: numpy.ndarray) -> float:
    """The value that means white in ``image``: 65535 for uint16 (its dtype's range);
    for other dtypes the first of 1.0 (floats only), 255, 65535 that is >= the image's
    largest value, or that largest value itself when it is above 65535."""
    if image.dtype == numpy.uint16:
        return 65535.0
    largest = float(image.max()) if image.size else 0.0
    scales = ((1.0,) if numpy.issubdtype(image.dtype, numpy.floating) else ()) + (255.0, 65535.0)
    return next((scale for scale in scales if largest <= scale), largest)
