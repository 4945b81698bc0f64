import secrets


def public_id(prefix: str, nbytes: int = 12) -> str:
    """A random public identifier such as ``video_3f2a...``; integer keys never leave the app."""
    return f"{prefix}_{secrets.token_hex(nbytes)}"
