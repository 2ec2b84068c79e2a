"""Reading request bodies with a hard size bound and a content-type check, as an endpoint dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .errors import TooLarge, UnsupportedMediaType

XML_TYPES = ("application/xml", "text/xml")


def require_xml(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in XML_TYPES:
        raise UnsupportedMediaType(f"send the message as application/xml (got '{media or 'nothing'}')")


async def read_bounded(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def xml_body(request: Request) -> bytes:
    """An XML body within ``max_body_bytes``; read before any transaction opens, so a slow client holds no lock."""
    require_xml(request)
    return await read_bounded(request, request.app.state.settings.max_body_bytes)


# An endpoint parameter: the request's XML body, size-bounded.
XmlBody = Annotated[bytes, Depends(xml_body)]


def wants_xml(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return any(t in accept for t in XML_TYPES) and "json" not in accept.split(",", 1)[0]
