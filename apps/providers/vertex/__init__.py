"""The vertex provider: Google's Veo 3.1 on Vertex AI, with a tenant's service account (reference/providers/veo.md)."""
