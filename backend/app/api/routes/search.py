from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import CurrentUser, SessionDep
from app.api.share_schemas import SearchItem, SearchPage
from app.services import search as search_service
from app.services.search import MAX_QUERY_CHARS

router = APIRouter(tags=["search"])


@router.get("/search", response_model=SearchPage)
async def search(
    user: CurrentUser,
    db: SessionDep,
    q: Annotated[
        str,
        Query(
            max_length=MAX_QUERY_CHARS,
            description='websearch syntax: `"exact phrase"`, `-excluded`, `a or b`; '
            "any part of a word is found too",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
    before: Annotated[
        str | None, Query(max_length=200, description="`next` of the previous page")
    ] = None,
):
    hits, next_cursor = await search_service.search(db, user.id, q, limit, before)
    return SearchPage(items=[SearchItem(**vars(hit)) for hit in hits], next=next_cursor)
