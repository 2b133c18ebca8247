"""Read a demo execution over REST with nothing but the standard library.

eval "$(.venv/bin/python -m service demo --shell)"
.venv/bin/python examples/rest_client.py [BASE_URL]
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
    if not base.startswith(("http://", "https://")):
        sys.exit("the base URL must start with http:// or https://")
    retriever = os.environ["EXECGATE_DEMO_RETRIEVER"]
    execution_id = os.environ["EXECGATE_DEMO_COMPLETED_10"]
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        f"{base}/v1/retrievers/{retriever}/executions/{execution_id}",
        headers={
            "Authorization": f"Bearer {os.environ['EXECGATE_DEMO_KEY']}",
            "X-Namespace": os.environ["EXECGATE_DEMO_NAMESPACE"],
        },
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (scheme checked above)
        detail = json.load(response)
        etag = response.headers["ETag"]
    stages = ", ".join(detail["stage_statistics"]["stages"])
    print(f"{detail['execution_id']}: {detail['status']}, {len(detail['documents'])} documents")
    print(f"  stages: {stages}; ETag {etag}")


if __name__ == "__main__":
    main()
