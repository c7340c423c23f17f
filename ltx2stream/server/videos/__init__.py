"""The OpenAI-compatible Videos API on the server's port (docs/http-api.md).

front    HTTP/1.1 with bodies for ``/v1/`` next to websockets (``FrontConnection``)
forms    JSON / multipart / URL-encoded request bodies
requests model → preset, size → width × height, seconds → segments; the protocol limits of ``open``
records  the ``video`` object and its files
jobs     video jobs on the live sessions' workers and queue
extend   extensions from a stored continuation state
stitch   the whole extension chain as one MP4
routes   the endpoints
"""

from ltx2stream.server.videos.front import FrontBinding, FrontConnection, front_connection
from ltx2stream.server.videos.jobs import VideoJobs
from ltx2stream.server.videos.records import VideoFiles
from ltx2stream.server.videos.routes import VideosApi

__all__ = ["FrontBinding", "FrontConnection", "VideoFiles", "VideoJobs", "VideosApi", "front_connection"]
