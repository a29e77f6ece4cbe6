"""V2 REST transport: the Starlette app (`endpoints.py`) and its message codec (`codec.py`).

`app` is the app the Bento mounts and the single-process launcher serves.
"""

from .endpoints import V2Dispatch, app, create_app

__all__ = ["V2Dispatch", "app", "create_app"]
