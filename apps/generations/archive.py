"""A batch's finished videos as one zip, streamed (``zipstream-ng``): nothing is built in memory or
on disk. Entries are stored, not deflated (``ZIP_STORED``: MP4 is compressed already, and a stored
entry's size is known up front, so the response carries a ``Content-Length``); each video is read
from storage chunk by chunk only when the client has taken the bytes before it."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from zipstream import ZIP_STORED, ZipStream

from apps.core.errors import NotFound
from apps.generations import storage
from apps.generations.models import Generation
from apps.generations.selectors import BatchSummary


def entry_name(gen: Generation) -> str:
    """``003-video_ab12….mp4``: the item's position in the batch first, so the files sort as asked."""
    extension = gen.video_file.rsplit(".", 1)[-1] if "." in gen.video_file else "mp4"
    return f"{(gen.batch_index or 0) + 1:03d}-{gen.public_id}.{extension}"


def batch_zip(summary: BatchSummary) -> ZipStream:
    """The zip of the batch's stored videos (the latest attempt at each position that completed)."""
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    for gen in summary.completed:
        archive.add(storage.iter_chunks(gen.video_file), entry_name(gen), size=gen.bytes)
    return archive


def zip_response(summary: BatchSummary) -> StreamingHttpResponse:
    """The zip of a batch's stored videos, streamed, with its length; NotFound while none is finished."""
    if not summary.completed:
        raise NotFound("No video of this batch is finished yet.", code="no_finished_videos")
    zipped = batch_zip(summary)
    response = StreamingHttpResponse(zipped, content_type="application/zip")
    response["Content-Length"] = str(len(zipped))
    response["Content-Disposition"] = f'attachment; filename="{summary.batch.public_id}.zip"'
    return response
