"""Run gcp-storage-emulator with the response headers of the real GCS API that it leaves out.

`python tests/gcs_emulator.py start --host 127.0.0.1 --port PORT --in-memory` (the emulator's own flags).

Real GCS answers a media download with `x-goog-generation` / `x-goog-metageneration`; the emulator does
not, and TensorStore (Orbax's array store) then reads generation 0, which it refuses as a precondition
for its next conditional write ("Malformed StorageGeneration").

Real GCS also checks the generation preconditions of uploads and deletes (`ifGenerationMatch`: 0 = "only
if absent", N = "only if its generation is still N") and answers 412 when they fail; the published
emulator ignores them. This wrapper checks them (the server handles one request at a time, so the check
and the write cannot interleave), which the workdir lease (jaxbert.lock) relies on. Everything else is
the emulator as published.
"""

from __future__ import annotations

import sys
from http import HTTPStatus

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


def _upload_name(request) -> str | None:
    if "name" in request.query:
        return request.query["name"][0]
    data = request.data if isinstance(request.data, dict) else {}
    return (data.get("meta") or {}).get("name") or data.get("name")


def _precondition_failed(request, response, storage, name: str | None) -> bool:
    """True (412 answered) when the request's ifGenerationMatch does not hold for the object `name`."""
    wanted = request.query.get("ifGenerationMatch")
    if not wanted or name is None:
        return False
    try:
        current = str(storage.get_file_obj(request.params["bucket_name"], name).get("generation", "1"))
    except Exception:  # absent: generation "0"
        current = "0"
    if current == str(wanted[0]):
        return False
    response.status = HTTPStatus.PRECONDITION_FAILED
    response.json({"error": {"code": 412, "message": "At least one of the pre-conditions you specified did not hold.",
                             "errors": [{"reason": "conditionNotMet"}]}})
    return True


_insert, _delete = objects.insert, objects.delete


def insert_with_preconditions(request, response, storage, *args, **kwargs):
    if _precondition_failed(request, response, storage, _upload_name(request)):
        return None
    return _insert(request, response, storage, *args, **kwargs)


def delete_with_preconditions(request, response, storage, *args, **kwargs):
    if _precondition_failed(request, response, storage, request.params.get("object_id")):
        return None
    return _delete(request, response, storage, *args, **kwargs)


# Before the server module builds its routing table.
objects.download = download_with_generation
objects.insert = insert_with_preconditions
objects.delete = delete_with_preconditions

from gcp_storage_emulator.__main__ import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
