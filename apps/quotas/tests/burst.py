"""A burst of chat requests from one OS process: ``python -m apps.quotas.tests.burst``.

The concurrency tests start several of these at once so requests really race
from different processes (and threads in each) against the live server. Only
the ``openai`` SDK and the standard library are used here, no Django. Reads a
JSON job as its argument, waits until its ``start_at`` (wall clock) so every process
fires together, and prints one JSON line per request.
"""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openai


def one(job: dict) -> dict:
    client = openai.OpenAI(
        base_url=job["base_url"], api_key=job["key"], max_retries=0, timeout=job.get("timeout", 60)
    )
    try:
        answer = client.chat.completions.create(**job["request"])
    except openai.APIStatusError as error:
        body = error.body if isinstance(error.body, dict) else {}
        return {
            "ok": False,
            "status": error.status_code,
            "retry_after": error.response.headers.get("retry-after"),
            "code": body.get("code"),
            "limit": body.get("limit"),
            "message": body.get("message"),
        }
    except openai.APIError as error:  # connection trouble: reported, the test fails on it
        return {"ok": False, "status": None, "message": str(error)}
    return {"ok": True, "id": answer.id, "usage": answer.usage.total_tokens}


def main() -> None:
    job = json.loads(sys.argv[1])
    with ThreadPoolExecutor(max_workers=job["threads"]) as pool:
        time.sleep(max(0.0, job["start_at"] - time.time()))
        results = list(pool.map(lambda _i: one(job), range(job["threads"])))
    for result in results:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
