"""The embedded default's Celery broker: kombu's filesystem transport, with atomic writes.

kombu's filesystem transport creates a message file and then writes it; a consumer polling the
folder can take the file in between, read it empty and die with a JSONDecodeError (seen in CI with
a worker and a web process on one queue). Here a message is written under a name consumers ignore
and renamed into place when complete (``os.replace`` is atomic on POSIX), so a consumer only ever
sees whole messages. Registered as the ``mrfs://`` broker URL in mediarouter/celery.py.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = final + ".part"  # consumers match "<queue>.msg" exactly, so they skip this one
        try:
            with open(partial, "wb") as fh:
                fh.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
