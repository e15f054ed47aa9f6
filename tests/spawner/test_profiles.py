"""Profiles: checked when the hub loads them, chosen per spawn, shown on the spawn page."""

import pytest

from westtek_spawner.profiles import (
    Profile,
    ProfileError,
    choose_profile,
    fargate_size,
    options_from_form,
    parse_profiles,
    render_options_form,
)

PROFILES = [
    {"slug": "small", "display_name": "Small", "cpu": 1, "memory_gib": 4, "default": True},
    {
        "slug": "large",
        "display_name": "Large <analysis>",
        "description": "for big data",
        "cpu": 4,
        "memory_gib": 16,
        "image": "westtek/notebook:big",
        "ephemeral_storage_gib": 100,
    },
]


def test_profiles_parse_into_typed_choices():
    small, large = parse_profiles(PROFILES)
    assert small == Profile("small", "Small", default=True, cpu=1.0, memory_gib=4.0)
    assert large.to_json() == {
        "slug": "large",
        "display_name": "Large <analysis>",
        "description": "for big data",
        "default": False,
        "cpu": 4.0,
        "memory_gib": 16.0,
        "image": "westtek/notebook:big",
        "ephemeral_storage_gib": 100,
    }


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [(0.25, 0.5, ("256", "512")), (1, 8, ("1024", "8192")), (16, 120, ("16384", "122880"))],
)
def test_fargate_sizes(cpu, memory, expected):
    assert fargate_size(cpu, memory) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"slug": "x", "cpu": 3}, "Fargate has no task with 3 vCPU: choose one of 0.25, 0.5, 1"),
        ({"slug": "x", "cpu": 1, "memory_gib": 16}, "1 vCPU with 2 to 8 GiB"),
        ({"slug": "x", "cpu": 8, "memory_gib": 18}, "in steps of 4 GiB, not 18 GiB"),
        ({"slug": "x", "gpu": 1}, "Fargate has no GPUs"),
        ({"slug": "x", "colour": "red"}, "unknown field(s) colour"),
        ({"slug": "bad slug"}, "letters, digits and dashes"),
        ({"slug": "x", "ephemeral_storage_gib": 500}, "21 to 200 GiB, not 500"),
    ],
)
def test_a_bad_profile_is_refused_with_what_is_wrong(raw, message):
    with pytest.raises(ProfileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_profiles([raw])


def test_slugs_unique_and_one_default():
    with pytest.raises(ProfileError, match="unique: a repeated"):
        parse_profiles([{"slug": "a"}, {"slug": "a"}])
    with pytest.raises(ProfileError, match="at most one profile may be the default"):
        parse_profiles([{"slug": "a", "default": True}, {"slug": "b", "default": True}])


def test_choice_falls_back_to_the_default_and_refuses_unknown_slugs():
    profiles = parse_profiles(PROFILES)
    assert choose_profile(profiles, None).slug == "small"
    assert choose_profile(profiles, "large").slug == "large"
    assert choose_profile(parse_profiles(PROFILES[1:]), None).slug == "large"  # first
    assert choose_profile([], None) is None
    with pytest.raises(ProfileError, match="no profile 'huge' on this hub: choose one of small"):
        choose_profile(profiles, "huge")


def test_form_preselects_the_remembered_profile_and_escapes_names():
    profiles = parse_profiles(PROFILES)
    form = render_options_form(profiles, "large")
    assert 'value="large" checked' in form and 'value="small" checked' not in form
    assert "Large &lt;analysis&gt;" in form and "4 vCPU, 16 GiB" in form
    assert 'value="small" checked' in render_options_form(profiles, "gone")
    assert options_from_form({"profile": ["large"]}) == {"profile": "large"}
    assert options_from_form({}) == {}
