"""The HTTP front: the Quart-Trio app (webhook ingress, request verification, admin API,
UI, metrics) and the hypercorn server around it.

Its public names, :func:`hookline.create_app` and :func:`hookline.serve`, are exported
from the top-level package only: the engine loads this package's sans-IO modules (the
router, problem details, request verification) while it is itself being imported, so
this ``__init__`` must not import the app, which imports the engine.
"""
