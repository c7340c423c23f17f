"""The OpenAI-compatible Videos API: ``/v1/videos`` routes over :class:`VideoJobs` (docs/http-api.md).

    POST   /v1/videos                 create a job (prompt, model, seconds, size, input_reference)
    GET    /v1/videos                 list jobs (after, limit, order)
    GET    /v1/videos/{id}            the job
    DELETE /v1/videos/{id}            cancel (a running job frees its worker within a step) and delete
    GET    /v1/videos/{id}/content    the MP4 (``?stitched=true``: the whole extension chain as one MP4)
    POST   /v1/videos/extensions      continue a completed video (or a stored live session) with a new prompt

Access is checked like the WebSocket (bearer token, Origin). Errors are OpenAI-shaped
(``{"error": {"message", "type", "param", "code"}}``) with our error code and the HTTP status of its close code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers

from ltx2stream import codes
from ltx2stream import protocol as P
from ltx2stream.codes import error_spec
from ltx2stream.errors import LTX2StreamError, ProtocolError, SessionError
from ltx2stream.server.auth import check_access
from ltx2stream.server.config import ServerConfig
from ltx2stream.server.videos.extend import extension_record
from ltx2stream.server.videos.forms import parse_body
from ltx2stream.server.videos.front import HttpReply, HttpRequest
from ltx2stream.server.videos.jobs import VideoJobs
from ltx2stream.server.videos.records import COMPLETED, VideoRecord, now
from ltx2stream.server.videos.requests import create_plan, seconds_of
from ltx2stream.server.videos.stitch import stitch
from ltx2stream.session.store import new_session_id

logger = logging.getLogger(__name__)
VIDEO_ID = re.compile(r"^/v1/videos/([A-Za-z0-9_-]{1,64})(/content)?$")
POLL_AFTER_MS = "500"


class VideosApi:
    """The ``/v1/`` handler of one server (``front_connection`` binds :meth:`handle`)."""

    def __init__(self, config: ServerConfig, jobs: VideoJobs, served: Callable[[], tuple[str, ...]]) -> None:
        self.config, self.jobs, self.served = config, jobs, served

    async def handle(self, request: HttpRequest) -> HttpReply:
        try:
            check_access(
                request.target,
                Headers(list(request.headers.items())),
                token=self.config.token,
                origins=self.config.origins,
            )
            await self.jobs.load()
            await self.jobs.expire(now())
            return await self._route(request)
        except LTX2StreamError as e:
            return error_reply(e)
        except Exception as e:  # the boundary of one request: logged, answered 500
            logger.exception("%s %s failed", request.method, request.target[:200])
            return error_reply(
                SessionError(f"{type(e).__name__}: see the server log", code=codes.SERVER_INTERNAL)
            )

    async def _route(self, request: HttpRequest) -> HttpReply:
        split = urlsplit(request.target)
        path, query = split.path.rstrip("/"), parse_qs(split.query)
        method = request.method
        if path == "/v1/videos":
            _allow(method, "GET", "POST")
            return await (self._create(request) if method == "POST" else self._list(query))
        if path == "/v1/videos/extensions":
            _allow(method, "POST")
            return await self._extend(request)
        match = VIDEO_ID.match(path)
        if match is None:
            raise ProtocolError(f"no Videos API endpoint at {path[:100]}", code=codes.VIDEO_NO_ROUTE)
        video_id, content = match.group(1), match.group(2) is not None
        if content:
            _allow(method, "GET")
            return await self._content(video_id, query)
        _allow(method, "GET", "DELETE")
        if method == "DELETE":
            if not await self.jobs.delete(video_id):
                raise _not_found(video_id)
            return _json({"id": video_id, "object": "video.deleted", "deleted": True})
        return _video(self._record(video_id))

    def _record(self, video_id: str) -> VideoRecord:
        record = self.jobs.get(video_id)
        if record is None:
            raise _not_found(video_id)
        return record

    async def _create(self, request: HttpRequest) -> HttpReply:
        form = parse_body(request.headers.get("content-type", ""), request.body)
        plan = create_plan(form, self.served(), self.config.limits)
        seconds = seconds_of(plan.settings, plan.segments, first=True)
        record = VideoRecord(
            id=f"video_{new_session_id()}",
            prompt=plan.prompt,
            settings=plan.settings,
            first_segment=0,
            segments=plan.segments,
            seconds=seconds,
            total_seconds=seconds,
            created_at=now(),
        )
        return _video(await self.jobs.submit(record, plan, None))

    async def _extend(self, request: HttpRequest) -> HttpReply:
        form = parse_body(request.headers.get("content-type", ""), request.body)
        record, plan, state = await extension_record(form, self.jobs, self.served(), self.config.limits)
        return _video(await self.jobs.submit(record, plan, state))

    async def _list(self, query: dict[str, list[str]]) -> HttpReply:
        order = _query(query, "order", "desc")
        if order not in ("asc", "desc"):
            raise ProtocolError(f"order: {order[:8]!r} is not asc or desc", code=codes.PROTOCOL_OUT_OF_RANGE)
        try:
            limit = int(_query(query, "limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise ProtocolError("limit: an integer in [1, 100]", code=codes.PROTOCOL_OUT_OF_RANGE)
        records = sorted(
            (r for r in (self.jobs.get(i) for i in list(self.jobs.records)) if r is not None),
            key=lambda r: (r.created_at, r.created_ns, r.id),
            reverse=order == "desc",
        )
        after = _query(query, "after", "")
        if after:
            ids = [r.id for r in records]
            records = records[ids.index(after) + 1 :] if after in ids else []
        page = records[:limit]
        return _json(
            {
                "object": "list",
                "data": [r.to_api() for r in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(records) > limit,
            }
        )

    async def _content(self, video_id: str, query: dict[str, list[str]]) -> HttpReply:
        record = self._record(video_id)
        variant = _query(query, "variant", "video")
        if variant != "video":
            raise ProtocolError(
                f"variant: {variant[:16]!r} is not served; only 'video'", code=codes.PROTOCOL_OUT_OF_RANGE
            )
        if record.status != COMPLETED:
            raise SessionError(
                f"video {video_id} is {record.status}; its content exists once it completed",
                code=codes.VIDEO_NOT_READY if not record.finished else codes.VIDEO_NOT_COMPLETED,
            )
        stitched = _query(query, "stitched", "false").lower() in ("1", "true", "yes")
        chain = self._chain(record) if stitched else [record]
        parts = await asyncio.gather(*(asyncio.to_thread(self.jobs.files.read_video, r.id) for r in chain))
        data = parts[0] if len(parts) == 1 else await asyncio.to_thread(stitch, parts, record.settings.fps)
        return HttpReply(
            200, data, "video/mp4", (("Content-Disposition", f'attachment; filename="{video_id}.mp4"'),)
        )

    def _chain(self, record: VideoRecord) -> list[VideoRecord]:
        """The completed videos this one extends, oldest first, then itself (a live-session root ends it)."""
        chain = [record]
        while chain[0].extends is not None:
            parent = self.jobs.get(chain[0].extends)
            if parent is None or parent.status != COMPLETED:
                break
            chain.insert(0, parent)
        return chain


def http_status(code: str) -> int:
    """The HTTP status of an error code: its close code minus 4000 (4404 -> 404), 500 for internal ones."""
    close = int(error_spec(code).close_code)
    if code == codes.VIDEO_METHOD:
        return 405
    if 4000 <= close < 5000:
        return close - 4000
    return {1001: 503, 1009: 413, 1008: 400}.get(close, 500)


def error_reply(error: LTX2StreamError) -> HttpReply:
    status = http_status(error.code)
    kind = (
        "invalid_request_error"
        if status < 500 and status not in (401, 403, 404, 429)
        else {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}.get(
            status, "rate_limit_error" if status == 429 else "server_error"
        )
    )
    body = {"error": {"message": str(error), "type": kind, "param": None, "code": error.code}}
    return HttpReply(status, json.dumps(body).encode(), "application/json")


def _video(record: VideoRecord) -> HttpReply:
    headers = () if record.finished else (("openai-poll-after-ms", POLL_AFTER_MS),)
    return HttpReply(200, json.dumps(record.to_api()).encode(), "application/json", headers)


def _json(data: Any) -> HttpReply:
    return HttpReply(200, json.dumps(data).encode(), "application/json")


def _query(query: dict[str, list[str]], name: str, default: str) -> str:
    return query.get(name, [default])[-1]


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise ProtocolError(
            f"method {method[:10]} is not served here; allowed: {', '.join(allowed)}", code=codes.VIDEO_METHOD
        )


def _not_found(video_id: str) -> SessionError:
    return SessionError(
        f"no video {video_id!r} (never created, deleted or expired)", code=codes.VIDEO_NOT_FOUND
    )


__all__ = ["P", "VideosApi", "error_reply", "http_status"]
