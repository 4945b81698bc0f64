"""HTTP helpers shared by pages, the API and the admin."""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _file_range(fh, start: int, length: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    try:
        fh.seek(start)
        while length > 0:
            data = fh.read(min(chunk, length))
            if not data:
                break
            length -= len(data)
            yield data
    finally:
        fh.close()


def ranged_file_response(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Answer ``Range: bytes=a-b`` on a streamed file with 206 (seeking in a video player), and an
    unsatisfiable range with 416. Any other response (a presigned S3 redirect: S3 answers ranges
    itself) is returned as it is. Only single ranges; a file without a Range header gets
    ``Accept-Ranges: bytes`` and is streamed whole."""
    if not isinstance(response, FileResponse):
        return response
    response["Accept-Ranges"] = "bytes"
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if not match or not (match.group(1) or match.group(2)):
        return response
    fh = response.file_to_stream
    size = fh.size
    first, last = match.groups()
    if first:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    else:  # a suffix: the last N bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size or end < start:
        fh.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    partial = StreamingHttpResponse(
        _file_range(fh, start, end - start + 1), status=206, content_type=response["Content-Type"]
    )
    partial["Content-Length"] = str(end - start + 1)
    partial["Content-Range"] = f"bytes {start}-{end}/{size}"
    partial["Accept-Ranges"] = "bytes"
    if response.has_header("Content-Disposition"):
        partial["Content-Disposition"] = response["Content-Disposition"]
    return partial
