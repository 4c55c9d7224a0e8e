"""The module `faust -A stream.worker worker` loads: the app built from the environment."""

from stream.app import build_app
from stream.settings import get_settings

app = build_app(get_settings())
