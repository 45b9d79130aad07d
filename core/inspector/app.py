"""The inspector: an HTTP API over both memory layers, a memory browser page, and ops endpoints.

``create_app(bot)`` serves a *started* :class:`~honeychat.core.bot.Bot`; it
never starts or stops it (``honeychat serve`` does, see
:mod:`honeychat.core.inspector.server`).

Rules the endpoints keep:

* Reads never write: the latest summary is read with ``fill_cache=False``
  and nothing refreshes a TTL.
* Search and export go through the same hooks as the chat and the CLI
  (``honeychat_search_memory``, ``honeychat_export_memory``); clear is the
  chat's own ``clear_conversation``, so a clear wins over a summary in progress.
* A layer that cannot be reached gives ``503`` naming it, never an empty
  answer: reads run inside :func:`~honeychat.core.memory.service.strict_reads`.
* Every endpoint but ``/healthz``, ``/readyz`` and the page's static files
  needs ``Authorization: Bearer <INSPECTOR_TOKEN>`` when a token is set.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from honeychat.core.inspector import models as m
from honeychat.core.inspector.guard import AuthThrottle, SecurityMiddleware, tokens_match
from honeychat.core.inspector.health import readiness
from honeychat.core.memory.service import MemoryService, strict_reads
from honeychat.core.memory.stores import StoreUnavailable
from honeychat.core.metrics import CONTENT_TYPE_LATEST, render
from honeychat.core.types import ConversationKey

if TYPE_CHECKING:
    from honeychat.core.bot import Bot

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500
MAX_RECENT = 1000
MAX_SEARCH_K = 50
MAX_QUERY_CHARS = 2000
_SCAN_ROUNDS = 20
"""SCAN calls one listing request may make while filling a page (bounded work per request)."""

_LAYER_NAMES = {"hot": "hot memory layer (Redis)", "cold": "cold memory layer (Chroma)"}

PlatformPath = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z0-9_-]{0,31}$",
        description="Platform name: telegram, discord, slack, terminal...",
    ),
]
UserPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The platform's user id (Slack: TEAM:USER). Percent-encode it.",
    ),
]
KindQuery = Annotated[
    Literal["private", "space"],
    Query(description="`space`: the conversation of a shared space (`user_id` is the space's id)."),
]
CharacterPath = Annotated[
    str,
    Path(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="Character id, as in `honeychat characters list`.",
    ),
]


class ApiError(Exception):
    """An error answered as ``{"error": code, "detail": sentence}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str, layer: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.layer = layer


def _error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = [str(p) for p in error.get("loc", ()) if p not in ("path", "query", "body")]
        parts.append(f"{'.'.join(where) or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _token_checker(token: str | None, throttle: AuthThrottle) -> Any:
    async def require_token(request: Request) -> None:
        if token is None:
            return
        client = request.client.host if request.client else "unknown"
        if throttle.blocked(client):
            raise ApiError(429, "too_many_attempts", "too many wrong tokens; try again later")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not tokens_match(value.strip(), token):
            throttle.failed(client, request.url.path)
            raise ApiError(
                401, "unauthorized", "a valid token is required: Authorization: Bearer <token>"
            )

    return require_token


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": m.ErrorResponse, "description": "Missing or wrong bearer token"},
    422: {"model": m.ErrorResponse, "description": "Malformed parameters"},
    503: {"model": m.ErrorResponse, "description": "A memory layer is unreachable"},
}
_CONVERSATION_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    404: {"model": m.ErrorResponse, "description": "No such conversation"},
}


def create_app(bot: Bot, *, inspector: bool = True) -> FastAPI:
    """The inspector app serving ``bot`` (already started).

    With ``inspector=False`` only the operations endpoints are served
    (``/healthz``, ``/readyz``, ``/metrics``): what ``honeychat run --ops-port``
    exposes next to the adapters.
    """
    settings = bot.settings
    token = settings.inspector_token.get_secret_value() if settings.inspector_token else None
    app = FastAPI(
        title="honeychat inspector",
        version="0.1.0",
        description="Browse and manage what each memory layer holds.",
        openapi_url=None,  # served below, behind the token
        docs_url=None,
        redoc_url=None,
    )
    if settings.inspector_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.inspector_cors_origins,
            allow_methods=["GET", "DELETE"],
            allow_headers=["Authorization"],
        )
    app.add_middleware(
        SecurityMiddleware,
        token_set=token is not None,
        allowed_hosts=settings.inspector_allowed_hosts,
    )
    auth = Depends(
        _token_checker(token, AuthThrottle(max_failures=settings.inspector_auth_failures))
    )
    _install_error_handlers(app)
    api = APIRouter(prefix="/api", dependencies=[auth], responses=_ERRORS)

    def memory() -> MemoryService:
        if bot.memory is None:
            raise ApiError(503, "memory_disabled", "the memory plugin is disabled in this process")
        return bot.memory

    def conversation_ref(key: ConversationKey) -> m.ConversationRef:
        return m.ConversationRef(
            id=key.id,
            platform=key.platform,
            user_id=key.user_id,
            character=key.character_id,
            kind=key.kind,
        )

    async def existing(
        platform: str, user_id: str, character: str, kind: str = "private"
    ) -> ConversationKey:
        """The conversation, if either layer knows it (a read, in strict mode); ``kind``
        ``space`` names a space's conversation (``user_id`` is then the space's id)."""
        key = ConversationKey(platform, user_id, character, kind)
        service = memory()
        if service.hot is not None and await service.hot.last_seq(key) > 0:
            return key
        if service.cold is not None and await service.cold.latest(key.id) is not None:
            return key
        raise ApiError(404, "not_found", f"no conversation {key.id} in memory")

    @api.get("/characters", response_model=list[m.CharacterInfo], summary="List characters")
    async def characters() -> list[m.CharacterInfo]:
        default = bot.characters.default.id
        return [
            m.CharacterInfo(
                id=c.id, name=c.name, description=c.description, is_default=c.id == default
            )
            for c in bot.characters.all()
        ]

    @api.get("/conversations", response_model=m.ConversationPage, summary="List conversations")
    async def conversations(
        cursor: Annotated[int, Query(ge=0, description="0 to start; then next_cursor")] = 0,
        limit: Annotated[
            int,
            Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, 1-{MAX_PAGE_SIZE}"),
        ] = 50,
    ) -> m.ConversationPage:
        """Conversations that have a hot buffer, in Redis SCAN order.

        A page holds at least ``limit`` conversations unless the listing ends
        (``next_cursor`` 0); it may hold a few more, as SCAN's COUNT is a hint.
        """
        hot = memory().hot
        if hot is None:
            raise ApiError(
                503, "store_unavailable", "the hot memory layer is not configured", "hot"
            )
        found: dict[str, m.ConversationRef] = {}
        for _ in range(_SCAN_ROUNDS):
            cursor, ids = await hot.conversations(cursor, limit)
            for conversation_id in ids:
                try:
                    found[conversation_id] = conversation_ref(
                        ConversationKey.parse(conversation_id)
                    )
                except ValueError:
                    log.warning("skipping a malformed conversation key %r", conversation_id)
            if cursor == 0 or len(found) >= limit:
                break
        return m.ConversationPage(items=list(found.values()), next_cursor=cursor, limit=limit)

    base = "/conversations/{platform}/{user_id}/{character}"

    @api.get(
        base + "/messages",
        response_model=m.RecentMessages,
        responses=_CONVERSATION_ERRORS,
        summary="Recent messages (the hot buffer)",
    )
    async def recent(
        platform: PlatformPath,
        user_id: UserPath,
        character: CharacterPath,
        limit: Annotated[int, Query(ge=1, le=MAX_RECENT)] = 100,
        kind: KindQuery = "private",
    ) -> m.RecentMessages:
        key = await existing(platform, user_id, character, kind)
        hot = memory().hot
        messages = await hot.recent(key, limit) if hot else []
        return m.RecentMessages(
            conversation=conversation_ref(key),
            last_seq=await hot.last_seq(key) if hot else 0,
            summarized_through=await hot.watermark(key) if hot else 0,
            messages=[m.Message.of(message) for message in messages],
        )

    @api.get(
        base + "/summary",
        response_model=m.LatestSummary,
        responses=_CONVERSATION_ERRORS,
        summary="The latest summary",
    )
    async def latest(
        platform: PlatformPath,
        user_id: UserPath,
        character: CharacterPath,
        kind: KindQuery = "private",
    ) -> m.LatestSummary:
        key = await existing(platform, user_id, character, kind)
        with strict_reads():
            summary = await memory().latest_summary(key, fill_cache=False)
        return m.LatestSummary(
            conversation=conversation_ref(key),
            summary=m.SummaryOut.of(summary) if summary else None,
        )

    @api.get(
        base + "/summaries",
        response_model=m.SummaryList,
        responses=_CONVERSATION_ERRORS,
        summary="Every summary, oldest window first",
    )
    async def summaries(
        platform: PlatformPath,
        user_id: UserPath,
        character: CharacterPath,
        kind: KindQuery = "private",
    ) -> m.SummaryList:
        key = await existing(platform, user_id, character, kind)
        cold = memory().cold
        found = await cold.all(key.id) if cold else []
        return m.SummaryList(
            conversation=conversation_ref(key), summaries=[m.SummaryOut.of(s) for s in found]
        )

    @api.get(
        base + "/search",
        response_model=m.SearchResults,
        responses=_CONVERSATION_ERRORS,
        summary="Semantic search over summaries (the chat's retrieval)",
    )
    async def search(
        platform: PlatformPath,
        user_id: UserPath,
        character: CharacterPath,
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
        k: Annotated[int, Query(ge=1, le=MAX_SEARCH_K)] = 5,
        kind: KindQuery = "private",
    ) -> m.SearchResults:
        if not q.strip():
            raise ApiError(422, "invalid_request", "q: the search query must not be blank")
        key = await existing(platform, user_id, character, kind)
        with strict_reads():
            found = await bot.plugins.first(
                "honeychat_search_memory", conversation=key, query=q, k=k, bot=bot, strict=True
            )
        return m.SearchResults(
            conversation=conversation_ref(key),
            query=q,
            k=k,
            results=[m.SummaryOut.of(s) for s in found or []],
        )

    @api.get(
        base + "/export",
        response_model=m.Export,
        responses=_CONVERSATION_ERRORS,
        summary="Everything memory holds, as JSON",
    )
    async def export(
        platform: PlatformPath,
        user_id: UserPath,
        character: CharacterPath,
        kind: KindQuery = "private",
    ) -> m.Export:
        key = await existing(platform, user_id, character, kind)
        with strict_reads():
            data = await bot.plugins.first(
                "honeychat_export_memory", conversation=key, bot=bot, strict=True
            )
        if data is None:
            raise ApiError(503, "memory_disabled", "no plugin exports memory in this process")
        return m.Export.model_validate(data)

    @api.get(
        base + "/trail",
        response_model=m.Trails,
        responses=_CONVERSATION_ERRORS,
        summary="Why each reply said what it said: what went into its prompt",
    )
    async def trail(
        platform: PlatformPath,
        user_id: UserPath,
        character: CharacterPath,
        reply: Annotated[list[int] | None, Query(description="Only these replies (seq)")] = None,
        kind: KindQuery = "private",
    ) -> m.Trails:
        key = await existing(platform, user_id, character, kind)
        if bot.trails is None:
            raise ApiError(503, "trail_disabled", "provenance trails are off in this process")
        found = await bot.trails.list(key, reply)
        return m.Trails(
            conversation=conversation_ref(key),
            ttl_hours=settings.provenance_ttl_hours,
            trails=[m.Trail.model_validate(t) for t in found if t.get("reply_seq") is not None],
        )

    @api.delete(
        base,
        response_model=m.Cleared,
        responses=_CONVERSATION_ERRORS,
        summary="Clear the conversation in both layers",
    )
    async def clear(
        platform: PlatformPath,
        user_id: UserPath,
        character: CharacterPath,
        kind: KindQuery = "private",
    ) -> m.Cleared:
        """The chat's own clear (``/forget``): a summary in progress is discarded."""
        from honeychat.core.forget import clear_conversation

        key = await existing(platform, user_id, character, kind)
        await clear_conversation(bot, key)
        log.info("inspector cleared %s", key.id)
        return m.Cleared(conversation=conversation_ref(key))

    @api.delete(
        "/users/{platform}/{user_id}",
        response_model=m.Erased,
        summary="Erase everything about a user: every character (and platform, if asked)",
    )
    async def erase(
        platform: PlatformPath,
        user_id: UserPath,
        every_platform: Annotated[
            bool, Query(description="Erase this user id on every platform, not only this one")
        ] = False,
    ) -> m.Erased:
        """The chat's own `/forget everything`, across platforms on request."""
        from honeychat.core.erase import ErasureIncomplete, UserRef, erase_user

        memory()
        try:
            erasure = await erase_user(bot, UserRef(user_id, None if every_platform else platform))
        except ErasureIncomplete as exc:
            raise ApiError(
                503,
                "erasure_incomplete",
                f"the {_LAYER_NAMES.get(exc.layer, exc.layer)} failed midway: part of the "
                "user's data is erased; erase again when it is back to finish",
                layer=exc.layer,
            ) from exc
        log.info("inspector: %s", erasure.describe())
        return m.Erased(
            user_id=user_id,
            platform=erasure.user.platform,
            conversations=erasure.conversations,
            removed=erasure.removed,
        )

    if inspector:
        app.include_router(api)

    @app.get("/healthz", response_model=m.Health, tags=["operations"])
    async def healthz() -> m.Health:
        """The process is alive (no dependency is checked)."""
        return m.Health()

    @app.get(
        "/readyz",
        response_model=m.Readiness,
        tags=["operations"],
        responses={503: {"model": m.Readiness, "description": "Not ready"}},
    )
    async def readyz() -> JSONResponse:
        """Redis, Chroma and the LLM configuration, each named; 503 while any is down."""
        result = await readiness(bot)
        return JSONResponse(result.model_dump(), status_code=200 if result.ready else 503)

    @app.get("/metrics", dependencies=[auth], tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """This process's metrics in the Prometheus text format."""
        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json", dependencies=[auth], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    if not inspector:
        return app
    static = resources.files("honeychat.core.inspector") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        extra = {"layer": exc.layer} if exc.layer else {}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        response = _error(exc.status, exc.code, exc.detail, **extra)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("inspector %s %s: %s", request.method, request.url.path, exc)
        name = _LAYER_NAMES.get(exc.layer, f"{exc.layer} memory layer")
        return _error(
            503,
            "store_unavailable",
            f"the {name} is unavailable; nothing was changed, try again when it is back",
            layer=exc.layer,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _describe_validation(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("inspector %s %s failed", request.method, request.url.path)
        return _error(500, "internal_error", "the inspector failed; details are in its log")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))
