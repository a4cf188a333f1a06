"""Earth Engine initialisation from credentials: once per process, with errors that say what
to put where; and the project's hook reaching it for `--env earthengine`."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import ee
import pytest
from kedro.config import OmegaConfigLoader

from dam_detection import settings
from dam_detection.hooks import EarthEngineHooks
from dam_detection.image_sources.base import make_image_source
from dam_detection.image_sources.earthengine import EarthEngineSource, session
from dam_detection.image_sources.settings import ImageSourceSettings


@pytest.fixture
def initialize_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(ee, "Initialize", lambda **kwargs: calls.append(kwargs))
    monkeypatch.setattr(session, "_check_reachable", lambda: None)  # as if online
    session.reset()
    yield calls
    session.reset()


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (None, "no `earthengine` credentials found; add to conf/local/credentials.yml"),
        ({"earthengine": {}}, "`earthengine.project` is missing"),
        ({"earthengine": {"project": "p", "key": "k"}}, "unknown keys \\['key'\\]"),
        ({"earthengine": {"project": "p", "service_account_key": "/no/key.json"}}, "not found"),
    ],
)
def test_missing_or_wrong_credentials_say_what_to_put_where(initialize_calls, credentials, message):
    with pytest.raises(session.EarthEngineSetupError, match=message):
        session.initialize_from_credentials(credentials)
    assert initialize_calls == []


def test_user_credentials_initialise_once(initialize_calls):
    credentials = {"earthengine": {"project": "my-project"}}
    session.initialize_from_credentials(credentials, {"kind": "earthengine"})
    session.initialize_from_credentials(credentials, {"kind": "earthengine"})
    assert initialize_calls == [{"credentials": "persistent", "project": "my-project"}]


def test_a_service_account_key_is_used(initialize_calls, monkeypatch, tmp_path):
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"client_email": "bot@p.iam.gserviceaccount.com"}))
    made = []
    monkeypatch.setattr(
        ee,
        "ServiceAccountCredentials",
        lambda email, key_file: made.append((email, key_file)) or "creds",
    )
    session.initialize_from_credentials(
        {"earthengine": {"project": "p", "service_account_key": str(key)}}
    )
    assert made == [("bot@p.iam.gserviceaccount.com", str(key))]
    assert initialize_calls == [{"credentials": "creds", "project": "p"}]
    key.write_text("{}")
    session.reset()
    with pytest.raises(session.EarthEngineSetupError, match="not a service-account JSON key"):
        session.initialize_from_credentials(
            {"earthengine": {"project": "q", "service_account_key": str(key)}}
        )


def test_a_refusal_from_earth_engine_explains_the_fix(monkeypatch):
    def refuse(**kwargs):
        raise ee.EEException("Please authorize access to your Earth Engine account")

    monkeypatch.setattr(ee, "Initialize", refuse)
    monkeypatch.setattr(session, "_check_reachable", lambda: None)  # online, but refused
    session.reset()
    with pytest.raises(session.EarthEngineSetupError, match="earthengine authenticate"):
        session.initialize_from_credentials({"earthengine": {"project": "p"}})


def earthengine_context(project):
    """What Kedro hands the hook for ``--env earthengine``: the project's real configuration
    loaded with the project's settings (the pipelines are not needed to initialise)."""
    loader = OmegaConfigLoader(
        conf_source=str(project / "conf"), env="earthengine", **settings.CONFIG_LOADER_ARGS
    )
    return SimpleNamespace(config_loader=loader, params=loader["parameters"])


def test_the_earthengine_environment_reads_local_credentials_and_builds_the_source(
    kedro_project, initialize_calls
):
    (kedro_project / "conf" / "local" / "credentials.yml").write_text(
        "earthengine:\n  project: dams-on-ee\n"
    )
    context = earthengine_context(kedro_project)
    EarthEngineHooks().after_context_created(context)
    assert initialize_calls == [{"credentials": "persistent", "project": "dams-on-ee"}]
    params = context.params
    assert params["seed"] == 42  # conf/base survives the environment (soft merge)
    settings = ImageSourceSettings.model_validate(params["image_source"])
    with pytest.raises(ValueError, match="set image_source.earthengine.bucket"):
        make_image_source(settings, params["seed"])
    with_bucket = settings.model_dump()
    with_bucket["earthengine"]["bucket"] = "my-exports"  # as --params would
    source = make_image_source(ImageSourceSettings.model_validate(with_bucket), 42)
    assert isinstance(source, EarthEngineSource) and source.read_url == "gs://my-exports"
    assert source.queue.max_attempts == 3 and source.project == "dams-on-ee"
    assert source.settings.composite.elevation.asset_id == "JAXA/ALOS/AW3D30/V4_1"


def test_the_earthengine_environment_without_credentials_stops_with_the_fix(
    kedro_project, initialize_calls
):
    with pytest.raises(session.EarthEngineSetupError, match="conf/local/credentials.yml"):
        EarthEngineHooks().after_context_created(earthengine_context(kedro_project))
    assert initialize_calls == []


def test_no_network_is_said_plainly_and_quickly(tmp_path):
    # A syntactically real service-account key; the sockets are blocked (conftest), so nothing
    # can check it: the error must say the service was unreachable, not that permission failed.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    key = tmp_path / "key.json"
    key.write_text(json.dumps({
        "type": "service_account", "project_id": "p", "private_key_id": "1",
        "private_key": pem, "client_email": "fake@p.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }))  # fmt: skip
    session.reset()
    started = time.monotonic()
    with pytest.raises(session.EarthEngineSetupError) as raised:
        session.initialize_from_credentials(
            {"earthengine": {"project": "p", "service_account_key": str(key)}}
        )
    message = str(raised.value)
    assert "could not be reached" in message and "credentials were not checked" in message
    assert "may use Earth Engine" not in message  # not the permissions advice
    assert time.monotonic() - started < 10
