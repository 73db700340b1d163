"""Run gcp-storage-emulator with the response headers of the real GCS API that it leaves out.

`python tests/gcs_emulator.py start --host 127.0.0.1 --port PORT --in-memory` (the emulator's own flags).

Real GCS answers a media download with `x-goog-generation` / `x-goog-metageneration`; the emulator does
not, and TensorStore (Orbax's array store) then reads generation 0, which it refuses as a precondition
for its next conditional write ("Malformed StorageGeneration"). Everything else is the emulator as
published; it accepts conditional writes without checking them, which a single writer does not notice.
"""

from __future__ import annotations

import sys

from gcp_storage_emulator.handlers import objects

_download = objects.download


def download_with_generation(request, response, storage, *args, **kwargs):
    try:
        obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
    except Exception:  # a missing object: the emulator's own handler answers 404
        obj = None
    if obj is not None:
        response["x-goog-generation"] = str(obj.get("generation", "1"))
        response["x-goog-metageneration"] = str(obj.get("metageneration", "1"))
    return _download(request, response, storage, *args, **kwargs)


objects.download = download_with_generation  # before the server module builds its routing table

from gcp_storage_emulator.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
