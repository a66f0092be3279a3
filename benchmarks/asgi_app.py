"""The gateway as an ASGI app factory, for servers started by import path (granian, uvicorn).

`create()` reads the config from `TOLLWAY_CONFIG`; all state is built in the lifespan.
"""

from __future__ import annotations

from tollway.app import TollwayApp
from tollway.settings import load_settings


def create() -> TollwayApp:
    """A fresh `TollwayApp` for the configured settings."""
    return TollwayApp(load_settings())
