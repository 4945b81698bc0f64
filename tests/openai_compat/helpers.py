"""Helpers shared by the OpenAI-compatible API tests."""

from __future__ import annotations

VIDEO_KEYS = {
    "id",
    "object",
    "model",
    "status",
    "progress",
    "created_at",
    "completed_at",
    "expires_at",
    "prompt",
    "size",
    "seconds",
    "remixed_from_video_id",
    "error",
}
ERROR_KEYS = {"message", "type", "param", "code"}


def assert_video(body: dict) -> None:
    """The contract's Video object: all 13 keys, the four statuses, seconds as a string."""
    assert set(body) == VIDEO_KEYS, set(body) ^ VIDEO_KEYS
    assert body["object"] == "video" and body["id"].startswith("video_")
    assert body["status"] in ("queued", "in_progress", "completed", "failed")
    assert isinstance(body["seconds"], str) and isinstance(body["progress"], int)
    assert isinstance(body["created_at"], int)
    if body["status"] == "failed":
        assert set(body["error"]) >= {"code", "message"}
    else:
        assert body["error"] is None


def assert_error(response, status: int, *, param: str | None = ..., code: str | None = ...) -> dict:
    assert response.status_code == status, response.content
    assert response["x-request-id"]
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS, error
    if param is not ...:
        assert error["param"] == param, error
    if code is not ...:
        assert error["code"] == code, error
    return error
