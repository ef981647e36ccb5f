"""A tus client nobody here wrote (tuspy, from PyPI) against the real server:
the first process uploads one chunk and exits as if cut off, keeping the
session URL in tuspy's own URL storage; the second finds it there, asks the
server for the offset and finishes. Prints what each saw as JSON lines.

    python tus_interop.py SERVER_URL TOKEN FILE SHA256 STORAGE_FILE first|resume
"""

import json
import sys

from tusclient import client
from tusclient.storage import filestorage

CHUNK = 5 * 1024 * 1024


def main() -> None:
    url, token, path, sha, storage_file, phase = sys.argv[1:7]
    tus = client.TusClient(url + "/v1/uploads", headers={"Authorization": "Bearer " + token})
    storage = filestorage.FileStorage(storage_file)
    uploader = tus.uploader(path, chunk_size=CHUNK, store_url=True, url_storage=storage,
                            metadata={"sha256": sha, "filename": "interop.bin",
                                      "path": "tuspy/interop.bin"})
    if phase == "first":
        uploader.upload_chunk()
        print(json.dumps({"phase": phase, "offset": uploader.offset, "url": uploader.url}))
        return
    start = uploader.offset
    uploader.upload()
    print(json.dumps({"phase": phase, "resumed_at": start, "offset": uploader.offset,
                      "url": uploader.url}))


if __name__ == "__main__":
    main()
