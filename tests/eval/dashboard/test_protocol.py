"""The dashboard's message checks: any text a page sends is a Command or a ProtocolError (never
another exception), defaults are the seed's, and names are checked against what the server offers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channelmarket.eval.dashboard.protocol import (DEFAULT_INTERVAL, DEFAULT_STEPS, SHOCKS, Options, ProtocolError,
                                                   parse)

OPTIONS = Options(("energy_small", "energy_default"), ("risk_factor", "truthful", "model:ppo.zip"), ("ep.jsonl",),
                  "energy_default", "risk_factor")
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200) | st.binary(max_size=50))
def test_any_text_is_a_command_or_a_protocol_error(text):
    try:
        parse(text, OPTIONS)
    except ProtocolError as err:
        assert str(err)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["execute", "pause", "shock", "speed", "replay", "other", 3, None]),
       st.dictionaries(st.sampled_from(["scenario", "population", "steps", "interval", "seed", "kind", "duration",
                                        "recording", "x"]), json_values, max_size=4))
def test_any_message_is_a_command_or_a_protocol_error(kind, fields):
    try:
        cmd = parse(json.dumps({"type": kind, **fields}), OPTIONS)
    except ProtocolError:
        return
    if cmd.type == "execute":
        assert cmd.args["scenario"] in OPTIONS.scenarios and cmd.args["population"] in OPTIONS.populations
        assert 1 <= cmd.args["steps"] <= 10_000 and 0.02 <= cmd.args["interval"] <= 10
    if cmd.type == "shock":
        assert cmd.args["kind"] in SHOCKS


def test_defaults_are_the_seeds():
    cmd = parse('{"type": "execute"}', OPTIONS)
    assert cmd.args == {"scenario": "energy_default", "population": "risk_factor", "steps": DEFAULT_STEPS,
                        "interval": DEFAULT_INTERVAL, "seed": 0}
    assert DEFAULT_STEPS == 100 and DEFAULT_INTERVAL == 1.0
    assert parse('{"type": "shock", "kind": "SUPPLY_SURPLUS"}', OPTIONS).args["duration"] >= 1
    assert set(SHOCKS) == {"DEMAND_SURGE", "DEMAND_DROP", "SUPPLY_SURPLUS", "SUPPLY_SHORTAGE"}


@pytest.mark.parametrize("msg, match", [
    ({"type": "execute", "population": "runs/other/model.zip"}, "population"),
    ({"type": "replay", "recording": "/etc/passwd"}, "recording"),
    ({"type": "execute", "seed": -1}, "seed"),
    ({"type": "pause", "now": True}, "unknown field"),
])
def test_names_and_fields_are_checked(msg, match):
    with pytest.raises(ProtocolError, match=match):
        parse(json.dumps(msg), OPTIONS)
