"""What an uploaded file is, from its own bytes (magic numbers), and what of it goes to Gemini.

The client's Content-Type is never believed: images are recognised by their signature and then
decoded by Pillow (a truncated or damaged one is refused), PDFs by `%PDF-` and their page tree
(pypdf), text by its extension and a strict UTF-8 decode. Anything else, SVG and HTML included,
is refused: the app never stores a file it could be made to serve as a page."""

import hashlib
import io
import re
import unicodedata
import warnings
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageOps
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from app.services.errors import Invalid, TooLarge, UnsupportedType

pillow_heif.register_heif_opener()

# Gemini scales larger images down itself; sending more only spends request size.
SEND_MAX_PX = 3072
THUMBNAIL_PX = 320
# A decoded image of more pixels is refused (a decompression bomb: small file, huge canvas).
MAX_PIXELS = 60_000_000
# Gemini reads at most 1000 pages of a document.
MAX_PDF_PAGES = 1000
NAME_MAX_CHARS = 255

Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_TEXT_TYPES = {
    ".txt": "text/plain",
    ".log": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".json": "application/json",
}
_SOURCE_EXTENSIONS = {
    ".py",
    ".js",
    ".mjs",
    ".ts",
    ".tsx",
    ".jsx",
    ".vue",
    ".java",
    ".kt",
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".hpp",
    ".cs",
    ".go",
    ".rs",
    ".rb",
    ".php",
    ".swift",
    ".sh",
    ".bash",
    ".sql",
    ".yaml",
    ".yml",
    ".toml",
    ".ini",
    ".cfg",
    ".css",
    ".scss",
    ".r",
    ".lua",
    ".pl",
    ".scala",
    ".dart",
    ".ex",
    ".exs",
    ".hs",
    ".diff",
    ".patch",
    ".tex",
    ".xml",
}
# Gemini's image types; GIF (its first frame) goes as PNG.
_GEMINI_IMAGES = {"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"}
_HEIF_BRANDS = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"hevc": "image/heic",
    b"hevx": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Inspected:
    name: str
    mime_type: str
    sha256: str
    send_mime_type: str
    send: bytes | None = None  # None: the original is what is sent
    thumbnail: bytes | None = None
    width: int | None = None
    height: int | None = None
    pages: int | None = None


def safe_name(raw: str | None) -> str:
    """The name to show and to put in Content-Disposition: no directory part, no control
    characters, at most NAME_MAX_CHARS characters (the extension kept). Only ever metadata:
    no file on disk is named after it."""
    name = unicodedata.normalize("NFC", raw or "")
    name = _CONTROL.sub("", name.replace("\\", "/")).rsplit("/", 1)[-1].strip().lstrip(".")
    if not name:
        return "file"
    if len(name) > NAME_MAX_CHARS:
        _stem, dot, ext = name.rpartition(".")
        ext = dot + ext if dot and len(ext) <= 16 else ""
        name = name[: NAME_MAX_CHARS - len(ext)] + ext
    return name


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return _HEIF_BRANDS[data[8:12]]
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def _extension(name: str) -> str:
    _, dot, ext = name.rpartition(".")
    return "." + ext.lower() if dot else ""


def inspect(data: bytes, raw_name: str | None) -> Inspected:
    """Raises Invalid (422), TooLarge (413) or UnsupportedType (415) with a readable reason."""
    name = safe_name(raw_name)
    if not data:
        raise Invalid("the file is empty")
    digest = hashlib.sha256(data).hexdigest()
    mime = _sniff(data)
    if mime is not None and mime.startswith("image/"):
        return _image(data, name, mime, digest)
    if mime == "application/pdf":
        return Inspected(name, mime, digest, mime, pages=_pdf_pages(data))
    ext = _extension(name)
    if ext in _TEXT_TYPES or ext in _SOURCE_EXTENSIONS:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("a text file must be UTF-8 encoded") from None
        if "\x00" in text:
            raise Invalid("a text file must not contain NUL characters")
        # Gemini reads every text file as plain text; the download keeps its own type.
        return Inspected(name, _TEXT_TYPES.get(ext, "text/plain"), digest, "text/plain")
    raise UnsupportedType(
        "this file type is not supported: images (PNG, JPEG, WebP, HEIC, GIF), PDF and UTF-8 "
        "text files (plain text, Markdown, CSV, JSON, source code) are"
    )


def _image(data: bytes, name: str, mime: str, digest: str) -> Inspected:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()  # structure and checksums, without decoding
            image = Image.open(io.BytesIO(data))
            image.seek(0)  # a GIF's (or animated WebP's) first frame
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooLarge(f"the image has more than {MAX_PIXELS} pixels") from None
    except Exception:  # Pillow raises many kinds (OSError, SyntaxError, ValueError, ...)
        raise Invalid("the image is damaged or truncated and cannot be read") from None
    image = ImageOps.exif_transpose(image)  # what the user sees is what Gemini sees
    width, height = image.size
    send, send_mime = None, mime
    if mime not in _GEMINI_IMAGES or max(width, height) > SEND_MAX_PX:
        scaled = image.copy()
        scaled.thumbnail((SEND_MAX_PX, SEND_MAX_PX), Image.Resampling.LANCZOS)
        send, send_mime = _encode(scaled)
    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    thumbnail, _ = _encode(thumb, prefer="WEBP")
    return Inspected(name, mime, digest, send_mime, send, thumbnail, width, height)


def _encode(image: Image.Image, prefer: str | None = None) -> tuple[bytes, str]:
    """PNG for images with transparency or few colours, else JPEG (WebP for thumbnails)."""
    out = io.BytesIO()
    if prefer == "WEBP":
        image.convert("RGBA").save(out, "WEBP", quality=80)
        return out.getvalue(), "image/webp"
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image.convert("RGBA").save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    image.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue(), "image/jpeg"


def _pdf_pages(data: bytes) -> int:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise Invalid("the PDF is encrypted; Gemini cannot read it")
        # The page tree's own count: read without walking (or decompressing) any page, so a
        # "PDF bomb" claiming millions of pages costs nothing to refuse.
        pages = int(reader.trailer["/Root"]["/Pages"]["/Count"])
    except Invalid:
        raise
    except (PyPdfError, KeyError, TypeError, ValueError, AttributeError, RecursionError):
        raise Invalid("the PDF is damaged and cannot be read") from None
    if pages < 1:
        raise Invalid("the PDF has no pages")
    if pages > MAX_PDF_PAGES:
        raise TooLarge(f"the PDF has {pages} pages; Gemini reads at most {MAX_PDF_PAGES}")
    return pages
