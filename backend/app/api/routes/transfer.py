from typing import Annotated, Literal
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile

from app.api.deps import ContainerDep, CurrentUser, SessionDep
from app.api.share_schemas import ImportedChat, ImportOut
from app.services import transfer
from app.services.errors import Invalid, TooLarge

router = APIRouter(tags=["export and import"])

# Room for the multipart framing around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def _attachment(name: str) -> dict[str, str]:
    return {
        "Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"
    }


@router.get(
    "/chats/{chat_id}/export",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "text/markdown": {}}}},
)
async def export_chat(
    chat_id: UUID,
    user: CurrentUser,
    db: SessionDep,
    format: Annotated[Literal["markdown", "json"], Query()] = "markdown",
) -> Response:
    if format == "json":
        chat, body = await transfer.export_chat_json(db, user.id, chat_id)
        media, name = "application/json", transfer.filename(chat, "json")
    else:
        chat, body = await transfer.export_chat_markdown(db, user.id, chat_id)
        media, name = "text/markdown; charset=utf-8", transfer.filename(chat, "md")
    return Response(body, media_type=media, headers=_attachment(name))


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}}},
)
async def export_all(user: CurrentUser, c: ContainerDep) -> StreamingResponse:
    return StreamingResponse(
        transfer.export_all(c, user.id),
        media_type="application/json",
        headers=_attachment("gemini-chat-export.json"),
    )


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportOut,
    responses={413: {"description": "The file is larger than IMPORT_MAX_BYTES"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def import_chats(request: Request, user: CurrentUser, db: SessionDep, c: ContainerDep):
    # Read by hand, after the size check: FastAPI's File() would spool any size first.
    limit = c.settings.IMPORT_MAX_BYTES
    too_large = f"the file is larger than the {limit} bytes allowed (IMPORT_MAX_BYTES)"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise TooLarge(too_large)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Invalid("send the file as multipart/form-data, in a field named `file`")
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("no file: send it in a multipart field named `file`")
        raw = await upload.read(limit + 1)
    if len(raw) > limit:
        raise TooLarge(too_large)
    if not raw:
        raise Invalid("the file is empty")
    made = await transfer.import_chats(db, c, user.id, transfer.parse(raw))
    return ImportOut(imported=len(made), chats=[ImportedChat(id=i, title=t) for i, t in made])
