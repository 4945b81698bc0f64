"""The pages' video fixture (completed videos, stored files), for the share-link tests."""

from tests.pages.conftest import make_videos  # noqa: F401 - a fixture
