"""The backend: a FastAPI + Tortoise ORM service that stores uploads and their detected circles.

Start it with `python -m backend`; build it in code with `backend.app.create_app(settings)`.
"""
