"""The management server: Corral's operations over a versioned REST API.

``create_app(site)`` (:mod:`corral.server.app`) builds the FastAPI
application; ``corral server`` runs it under uvicorn. The server holds no
logic of its own beyond HTTP: each route parses the request, opens an
operations session with the caller's identity and calls :mod:`corral.ops`.
"""
