"""Initialise Earth Engine once per process from ``conf/local/credentials.yml``.

Called by :class:`dam_detection.hooks.EarthEngineHooks` when ``image_source.kind`` is
``earthengine``; nodes never initialise Earth Engine themselves. Expected credentials::

    earthengine:
      project: my-cloud-project                  # Google Cloud project registered for Earth Engine
      service_account_key: conf/local/ee-key.json  # optional; else `earthengine authenticate`
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ee

logger = logging.getLogger(__name__)

CREDENTIALS_KEY = "earthengine"
_EXAMPLE = (
    "add to conf/local/credentials.yml:\n"
    "  earthengine:\n"
    "    project: <your Google Cloud project id registered for Earth Engine>\n"
    "    service_account_key: <optional path to a service-account JSON key>"
)

#: (project, key file) of the current initialisation, so that a second call is a no-op.
_initialized_with: tuple[str, str | None] | None = None


class EarthEngineSetupError(RuntimeError):
    """Earth Engine cannot be initialised; the message says what to put where."""


def _settings(credentials: Mapping[str, Any] | None) -> tuple[str, str | None]:
    section = (credentials or {}).get(CREDENTIALS_KEY)
    if not isinstance(section, Mapping):
        raise EarthEngineSetupError(f"no `{CREDENTIALS_KEY}` credentials found; {_EXAMPLE}")
    project = section.get("project")
    if not isinstance(project, str) or not project.strip():
        raise EarthEngineSetupError(f"`{CREDENTIALS_KEY}.project` is missing or empty; {_EXAMPLE}")
    unknown = set(section) - {"project", "service_account_key"}
    if unknown:
        raise EarthEngineSetupError(
            f"unknown keys {sorted(unknown)} under `{CREDENTIALS_KEY}` in "
            "conf/local/credentials.yml; allowed: project, service_account_key"
        )
    key_file = section.get("service_account_key")
    return project.strip(), str(key_file) if key_file else None


def service_account_credentials(key_file: str) -> Any:
    """Credentials from a service-account JSON key file.

    Raises:
        EarthEngineSetupError: If the file is missing or is not a service-account key.
    """
    path = Path(key_file).expanduser()
    if not path.is_file():
        raise EarthEngineSetupError(
            f"service-account key {path} not found: download a JSON key for the service account "
            "(Google Cloud console, IAM, Service accounts, Keys) and set "
            f"`{CREDENTIALS_KEY}.service_account_key` in conf/local/credentials.yml to its path"
        )
    try:
        email = json.loads(path.read_text())["client_email"]
    except (ValueError, KeyError, TypeError) as error:
        raise EarthEngineSetupError(
            f"{path} is not a service-account JSON key (no client_email): download the key "
            "again as JSON"
        ) from error
    return ee.ServiceAccountCredentials(email, key_file=str(path))


def load_credentials(config_loader: Any) -> dict[str, Any]:
    """The run's credentials, with ``conf/local``'s ``earthengine`` section when the run's own
    environment has none.

    ``kedro run --env earthengine`` reads ``conf/base`` and ``conf/earthengine`` only, yet the
    credentials belong in the git-ignored ``conf/local``; this reads them from there too. A
    project without any credentials file gives ``{}`` (Kedro raises for a missing file).

    Args:
        config_loader: The context's ``OmegaConfigLoader``.
    """
    from kedro.config import MissingConfigException, OmegaConfigLoader

    def read(loader: Any) -> dict[str, Any]:
        try:
            return dict(loader["credentials"])
        except MissingConfigException:
            return {}

    credentials = read(config_loader)
    if not isinstance(credentials.get(CREDENTIALS_KEY), Mapping):
        local = OmegaConfigLoader(
            conf_source=config_loader.conf_source, base_env="base", default_run_env="local"
        )
        credentials.update({k: v for k, v in read(local).items() if k == CREDENTIALS_KEY})
    return credentials


def initialize_from_credentials(
    credentials: Mapping[str, Any] | None,
    image_source_params: Mapping[str, Any] | None = None,
) -> None:
    """Initialise Earth Engine for this process (once; later calls with the same settings return).

    Args:
        credentials: The credentials configuration (:func:`load_credentials`).
        image_source_params: ``params:image_source``; only logged, the source is built later.

    Raises:
        EarthEngineSetupError: If the credentials are missing or Earth Engine refuses them.
    """
    global _initialized_with
    project, key_file = _settings(credentials)
    if _initialized_with == (project, key_file):
        return
    auth = service_account_credentials(key_file) if key_file else "persistent"
    try:
        ee.Initialize(credentials=auth, project=project)
    except Exception as error:  # noqa: BLE001 - every failure here is a setup problem
        how = (
            f"check that the service account in {key_file} may use Earth Engine in {project}"
            if key_file
            else "run `earthengine authenticate` once, or set service_account_key"
        )
        raise EarthEngineSetupError(
            f"Earth Engine initialisation for project {project!r} failed: {error}. {how}; "
            "the project must be registered for Earth Engine "
            "(https://code.earthengine.google.com/register)"
        ) from error
    _initialized_with = (project, key_file)
    kind = (image_source_params or {}).get("kind", "earthengine")
    logger.info("Earth Engine initialised for project %s (image source: %s)", project, kind)


def reset() -> None:
    """Forget the current initialisation, so the next call initialises again."""
    global _initialized_with
    _initialized_with = None
