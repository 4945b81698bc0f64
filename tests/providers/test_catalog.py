from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from apps.providers import catalog, registry
from apps.providers.catalog import UnknownModel, estimate_cost, get_model, list_models, validate_request

REQUIRED = [
    "sora-2",
    "sora-2-pro",
    "gen4_turbo",
    "gen4.5",
    "gen3a_turbo",
    "kling-v1-6",
    "kling-v2-1",
    "kling-v2-5-turbo",
    "kling-v2-6",
    "sandbox-video",
]


@pytest.mark.parametrize("model_id", REQUIRED)
def test_required_models_exist(model_id):
    model = get_model(model_id)
    assert model.id == model_id
    assert model.provider in registry.PROVIDERS
    assert model.provider_model
    assert model.capabilities and model.capabilities <= catalog.CAPABILITIES
    assert model.default_seconds in model.seconds and model.default_size in model.sizes
    assert set(model.price_per_second) == set(model.sizes)
    assert all(isinstance(p, Decimal) for p in model.price_per_second.values())
    assert isinstance(model.price_source_date, date) and model.price_version


def test_sora_2_720p_for_4_seconds_costs_exactly_40_cents():
    assert estimate_cost(get_model("sora-2"), seconds=4, size="1280x720") == Decimal("0.40")


@pytest.mark.parametrize(
    ("model_id", "size", "seconds", "expected"),
    [
        ("sora-2", "720x1280", 12, "1.20"),
        ("sora-2-pro", "1280x720", 4, "1.20"),
        ("sora-2-pro", "1792x1024", 8, "4.00"),
        ("sora-2-pro", "1920x1080", 20, "14.00"),
        ("gen4.5", "1280x720", 5, "0.60"),
        ("gen4.5", "960x960", 10, "1.20"),
        ("gen4_turbo", "1280x720", 10, "0.50"),
        ("gen3a_turbo", "1280x768", 5, "0.25"),
        ("kling-v1-6", "1280x720", 5, "0.28"),
        ("kling-v1-6", "1920x1080", 5, "0.49"),
        ("kling-v2-1", "1080x1920", 10, "0.98"),
        ("kling-v2-5-turbo", "1280x720", 5, "0.21"),
        ("kling-v2-5-turbo", "1080x1080", 5, "0.35"),
        ("kling-v2-6", "720x1280", 10, "0.42"),
        ("sandbox-video", "1280x720", 12, "0"),
    ],
)
def test_estimates_match_the_reference_prices(model_id, size, seconds, expected):
    cost = estimate_cost(get_model(model_id), seconds=seconds, size=size)
    assert cost == Decimal(expected)
    assert cost.as_tuple().exponent == -4  # quantized to 0.0001 USD


def test_estimate_refuses_an_unpriced_size():
    with pytest.raises(ValueError, match="no price"):
        estimate_cost(get_model("sora-2"), seconds=4, size="1920x1080")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sora-2", "sora-2"),
        ("openai/sora-2", "sora-2"),
        ("sora/sora-2-pro", "sora-2-pro"),
        ("runway/gen4.5", "gen4.5"),
        ("runway/gen4_turbo", "gen4_turbo"),
        ("kling/kling-v2-1", "kling-v2-1"),
        (" KLING/kling-v2-6 ", "kling-v2-6"),
    ],
)
def test_get_model_accepts_bare_and_prefixed_ids(given, expected):
    assert get_model(given).id == expected


@pytest.mark.parametrize("given", ["sora-3", "runway/sora-2", "acme/gen4.5", "", "kling-v9"])
def test_get_model_raises_unknown_model(given):
    with pytest.raises(UnknownModel):
        get_model(given)
    assert issubclass(UnknownModel, ValueError)


def test_deprecations_are_flagged_but_models_stay_usable():
    for model_id in ("sora-2", "sora-2-pro"):
        model = get_model(model_id)
        assert model.deprecated_on == date(2026, 9, 24)
        assert "OPENAI_BASE_URL" in model.shutdown_note
        assert validate_request(model_id=model_id, seconds=4, size="1280x720", has_image=False) == {}
    assert get_model("gen3a_turbo").deprecated
    assert not get_model("gen4.5").deprecated


def test_list_models_skips_disabled_providers(settings):
    settings.SANDBOX_PROVIDER_ENABLED = True
    assert "sandbox-video" in [m.id for m in list_models()]
    settings.SANDBOX_PROVIDER_ENABLED = False
    ids = [m.id for m in list_models()]
    assert "sandbox-video" not in ids and "sora-2" in ids


def test_list_models_filters_by_provider():
    assert {m.provider for m in list_models(providers=["runway"])} == {"runway"}
    assert {m.id for m in list_models(providers=["openai"])} == {"sora-2", "sora-2-pro"}


def test_a_valid_request_has_no_errors():
    assert validate_request(model_id="runway/gen4.5", seconds=5, size="1280x720", has_image=False) == {}
    assert validate_request(model_id="kling-v2-1", seconds=10, size="1920x1080", has_image=True) == {}
    assert validate_request(model_id="sora-2", seconds=None, size=None, has_image=False) == {}


def test_unknown_model_is_a_model_error():
    assert set(validate_request(model_id="nope", seconds=4, size="1280x720", has_image=False)) == {"model"}


def test_disabled_provider_is_a_model_error(settings):
    settings.SANDBOX_PROVIDER_ENABLED = False
    errors = validate_request(model_id="sandbox-video", seconds=4, size="1280x720", has_image=False)
    assert "disabled" in errors["model"]


@pytest.mark.parametrize("model_id", ["gen4_turbo", "gen3a_turbo", "kling-v2-1"])
def test_image_only_models_need_an_image(model_id):
    model = get_model(model_id)
    errors = validate_request(
        model_id=model_id, seconds=model.default_seconds, size=model.default_size, has_image=False
    )
    assert errors == {"input_reference": f"{model.label} needs an input image (image to video only)."}


def test_text_only_model_refuses_an_image():
    errors = validate_request(model_id="sandbox-video", seconds=4, size="1280x720", has_image=True)
    assert set(errors) == {"input_reference"}


def test_seconds_and_size_are_checked():
    errors = validate_request(model_id="sora-2", seconds=5, size="1920x1080", has_image=False)
    assert set(errors) == {"seconds", "size"}
    assert "4, 8, 12" in errors["seconds"]
    assert "1280x720" in errors["size"]


def test_gen45_text_to_video_takes_only_two_ratios():
    errors = validate_request(model_id="gen4.5", seconds=5, size="960x960", has_image=False)
    assert "without an input image" in errors["size"]
    assert validate_request(model_id="gen4.5", seconds=5, size="960x960", has_image=True) == {}


def test_seed_and_negative_prompt_support():
    assert set(validate_request(model_id="sora-2", seconds=4, size="1280x720", has_image=False, seed=1)) == {"seed"}
    assert validate_request(model_id="gen4.5", seconds=5, size="1280x720", has_image=False, seed=42) == {}
    assert "seed" in validate_request(model_id="gen4.5", seconds=5, size="1280x720", has_image=False, seed=-1)
    assert "seed" in validate_request(model_id="gen4.5", seconds=5, size="1280x720", has_image=False, seed=2**32)
    assert set(
        validate_request(model_id="gen4.5", seconds=5, size="1280x720", has_image=False, negative_prompt="blur")
    ) == {"negative_prompt"}
    assert (
        validate_request(model_id="kling-v2-6", seconds=5, size="1280x720", has_image=False, negative_prompt="blur")
        == {}
    )


def test_remix_needs_a_remix_capable_model():
    assert validate_request(model_id="sora-2", seconds=None, size=None, has_image=False, is_remix=True) == {}
    errors = validate_request(model_id="gen4.5", seconds=None, size=None, has_image=False, is_remix=True)
    assert set(errors) == {"model"}
