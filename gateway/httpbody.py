"""Reading request bodies with a hard size bound and a content-type check."""

from __future__ import annotations

from fastapi import Request

from .problems import Problem

XML_TYPES = ("application/xml", "text/xml")


def require_xml(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in XML_TYPES:
        raise Problem(415, "Unsupported Media Type", f"send the message as application/xml (got '{media or 'nothing'}')")


async def read_bounded(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "Content Too Large", f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Content Too Large", f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def wants_xml(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return any(t in accept for t in XML_TYPES) and "json" not in accept.split(",", 1)[0]
