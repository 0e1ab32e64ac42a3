from uuid import UUID

from fastapi import APIRouter, Request, Response, status

from app.api.deps import CurrentUser, SessionDep
from app.api.share_schemas import ShareCreated, SharedChatOut, ShareOut
from app.services import shares

router = APIRouter(tags=["share links"])


@router.post(
    "/chats/{chat_id}/share", status_code=status.HTTP_201_CREATED, response_model=ShareCreated
)
async def create_share(chat_id: UUID, request: Request, user: CurrentUser, db: SessionDep):
    share, token = await shares.create(db, user.id, chat_id)
    return ShareCreated(
        id=share.id,
        token=token,
        url=f"{str(request.base_url).rstrip('/')}/s/{token}",
        shared_at=share.created_at,
        message_count=len(share.messages),
    )


@router.get("/chats/{chat_id}/share", response_model=list[ShareOut])
async def list_shares(chat_id: UUID, user: CurrentUser, db: SessionDep):
    return [
        ShareOut(id=s.id, title=s.title, shared_at=s.created_at, message_count=len(s.messages))
        for s in await shares.list_for_chat(db, user.id, chat_id)
    ]


@router.delete("/chats/{chat_id}/share/{share_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_share(chat_id: UUID, share_id: UUID, user: CurrentUser, db: SessionDep):
    await shares.revoke(db, user.id, chat_id, share_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/shared/{token}", response_model=SharedChatOut)
async def read_shared(token: str, response: Response, db: SessionDep):
    share = await shares.read(db, token)
    # Anyone with the link may read it; search engines and caches should not keep it.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return SharedChatOut(title=share.title, messages=share.messages, shared_at=share.created_at)
