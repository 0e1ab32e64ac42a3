from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, File, Response, UploadFile, status

from app.api.deps import ContainerDep, CurrentUser, SessionDep
from app.api.schemas import UploadOut
from app.services import uploads
from app.services.uploads import Content

router = APIRouter(prefix="/uploads", tags=["uploads"])

# Shown by the browser itself only when it is an image; everything else is a download, and
# nothing is ever run as a page from the app's origin (no HTML or SVG is even stored).
_INLINE = {"image/png", "image/jpeg", "image/webp", "image/gif"}


def _disposition(kind: str, name: str) -> str:
    # RFC 6266: an ASCII fallback with quotes and backslashes removed, and the exact name
    # percent-encoded (RFC 5987), so no name can end the header or add a parameter.
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _answer(found: Content, inline: bool) -> Response:
    media = found.mime_type
    if media.startswith("text/") or media == "application/json":
        media += "; charset=utf-8"
    kind = "inline" if inline and found.mime_type in _INLINE else "attachment"
    return Response(
        found.data,
        media_type=media,
        headers={
            "Content-Disposition": _disposition(kind, found.upload.name),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=86400",
        },
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UploadOut)
async def upload(user: CurrentUser, db: SessionDep, c: ContainerDep, file: UploadFile = File()):
    return await uploads.store(c, db, user.id, file)


@router.get("/{upload_id}", response_class=Response)
async def download(upload_id: UUID, user: CurrentUser, db: SessionDep):
    return _answer(await uploads.content(db, user.id, upload_id), inline=True)


@router.get("/{upload_id}/thumbnail", response_class=Response)
async def thumbnail(upload_id: UUID, user: CurrentUser, db: SessionDep):
    return _answer(await uploads.thumbnail(db, user.id, upload_id), inline=True)


@router.delete("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove(upload_id: UUID, user: CurrentUser, db: SessionDep):
    await uploads.remove(db, user.id, upload_id)
