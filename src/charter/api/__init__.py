"""The REST API: a FastAPI app over the service layer (`charter server`)."""
