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
import os
import socket
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
    _check_reachable()
    try:
        ee.Initialize(credentials=auth, project=project)
    except Exception as error:  # noqa: BLE001 - every failure here is a setup problem
        if is_unreachable(error):
            raise EarthEngineSetupError(
                f"Earth Engine could not be reached ({_innermost(error)}): this machine has no "
                "network, or a proxy or firewall blocks Google's servers. The credentials were "
                "not checked; fix the connection and run again"
            ) from error
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


#: Where Earth Engine's API answers, and how long to wait for it before saying so.
SERVICE_HOST = "earthengine.googleapis.com"
CONNECT_TIMEOUT_S = 5.0


def _check_reachable() -> None:
    """Fail within seconds when Earth Engine's host cannot be reached at all.

    Without this, the client libraries retry with back-off for half a minute and then report
    the failed token refresh, which reads like a credentials problem. Behind a proxy
    (``HTTPS_PROXY``) only the client libraries know the way, so the probe is skipped.
    """
    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return
    try:
        with socket.create_connection((SERVICE_HOST, 443), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        raise EarthEngineSetupError(
            f"Earth Engine could not be reached ({SERVICE_HOST}:443: {error}): this machine has "
            "no network, or a firewall blocks Google's servers. The credentials were not "
            "checked; fix the connection and run again"
        ) from error


def is_unreachable(error: BaseException) -> bool:
    """Whether an error (or one it was raised from) says the network failed, not the account."""
    from google.auth.exceptions import TransportError

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # requests' and urllib3's connection errors, DNS failures and timeouts are all OSErrors.
        if isinstance(current, OSError | TransportError):
            return True
        current = current.__cause__ or current.__context__
    return False


def _innermost(error: BaseException) -> str:
    while error.__cause__ or error.__context__:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]  # not None here
    return f"{type(error).__name__}: {error}"


def initialized_project() -> str | None:
    """The Cloud project this process initialised Earth Engine for, if it did."""
    return _initialized_with[0] if _initialized_with else None


def uses_service_account() -> bool:
    """Whether this process initialised Earth Engine with a service-account key."""
    return bool(_initialized_with and _initialized_with[1])


def reset() -> None:
    """Forget the current initialisation, so the next call initialises again."""
    global _initialized_with
    _initialized_with = None
