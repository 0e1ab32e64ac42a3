"""`python -m standin --host H --port P`: serve the offline Gemini stand-in."""

import argparse

import uvicorn

from .app import build_app
from .dials import Dials


def main() -> None:
    parser = argparse.ArgumentParser(prog="standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    dials = Dials.from_env()
    print(
        f"offline Gemini stand-in on http://{args.host}:{args.port} "
        "(replies are canned offline stand-ins, not Gemini)",
        flush=True,
    )
    uvicorn.run(
        build_app(dials), host=args.host, port=args.port, log_level="warning",
        access_log=False, loop="uvloop", http="httptools",
        # Longer than any client's keep-alive expiry (httpx: 5 s), as on Google's side, so a
        # client never reuses a connection the server is closing at that moment.
        timeout_keep_alive=75,
        workers=1,  # one process whatever WEB_CONCURRENCY (the backend's setting) says
    )


if __name__ == "__main__":
    main()
