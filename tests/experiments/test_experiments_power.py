"""Power and sample size against R power.prop.test / power.t.test (AB-4, AB-5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.errors import NotComputableError, ParameterError
from journeylab.experiments import (
    arcsine_power,
    power_calculator,
    power_prop_test,
    power_t_test,
    prop_power,
    t_power,
)

REF = json.loads(
    (Path(__file__).parents[1] / "results" / "experiments_reference.json").read_text()
)["AB-4"]
AB5 = json.loads(
    (Path(__file__).parents[1] / "results" / "experiments_reference.json").read_text()
)["AB-5"]


def test_prop_power_same_as_R_power_prop_test():
    assert prop_power(50, 0.5, 0.75) == pytest.approx(REF["a_power"], rel=1e-6)
    calc = power_prop_test(n=50, p1=0.5, p2=0.75)
    assert calc.power == pytest.approx(REF["a_power"], rel=1e-6)
    assert "power.prop.test" in calc.method


def test_arcsine_power_is_a_different_named_method():
    h = arcsine_power(50, 0.5, 0.75)
    assert h == pytest.approx(REF["a_arcsine_power"], abs=5e-5)
    assert abs(h - REF["a_power"]) > 1e-3  # more than rounding apart


def test_sample_size_same_as_R_power_prop_test():
    assert power_prop_test(p1=0.5, p2=0.75, power=0.9).n_per_variant == pytest.approx(
        REF["b_n"], rel=1e-4
    )
    calc = power_prop_test(p1=0.10, p2=0.11, power=0.80)
    assert calc.n_per_variant == pytest.approx(REF["c_n"], rel=1e-4)
    assert calc.solved_for == "n_per_variant"
    assert calc.n_total == 2 * 14_751


def test_t_power_same_as_R_power_t_test():
    assert t_power(20, 1.0) == pytest.approx(REF["d_power"], rel=1e-6)
    assert power_t_test(n=20, delta=1).power == pytest.approx(REF["d_power"], rel=1e-6)
    assert power_t_test(delta=1, power=0.9).n_per_variant == pytest.approx(
        REF["e_n_two_sided"], rel=1e-4
    )
    one = power_t_test(delta=1, power=0.9, alternative="one-sided")
    assert one.n_per_variant == pytest.approx(REF["e_n_one_sided"], rel=1e-4)


def test_unsolvable_sizes_raise_never_return_a_bracket_value():
    zero, tiny, p2 = AB5["cases"]
    with pytest.raises(NotComputableError, match="p1 == p2 == 0.1: no sample size"):
        power_prop_test(p1=zero["p1"], p2=zero["p2"], power=zero["power"])
    with pytest.raises(NotComputableError, match="cannot solve for n: the power ranges"):
        power_prop_test(p1=tiny["p1"], p2=tiny["p2"], power=tiny["power"])
    with pytest.raises(
        NotComputableError, match="cannot solve for p2.*add users or lower the power"
    ):
        power_prop_test(n=p2["n"], p1=p2["p1"], power=p2["power"])
    with pytest.raises(NotComputableError, match="delta == 0"):
        power_t_test(delta=0, power=0.8)
    with pytest.raises(NotComputableError, match="cannot solve for n"):
        power_t_test(delta=1e-9, power=0.99)


def test_argument_errors_are_clear():
    with pytest.raises(ParameterError, match="exactly one of"):
        power_prop_test(n=10, p1=0.1, p2=0.2, power=0.8)
    with pytest.raises(ParameterError, match="power == 1.2, must be < 1"):
        power_prop_test(p1=0.1, p2=0.2, power=1.2)
    with pytest.raises(ParameterError, match="needs sd"):
        power_calculator(10.0, mde=1.0, kind="continuous")
    with pytest.raises(ParameterError, match="baseline \\+ mde == 1.1"):
        power_calculator(0.9, mde=0.2)


def test_power_calculator_reads_plainly():
    calc = power_calculator(0.10, mde=0.10, relative=True)
    assert calc.n_per_variant == pytest.approx(REF["c_n"], rel=1e-4)
    text = calc.summary()
    assert "from 10.0% to 11.0% (+1.0 pp, +10.0% relative)" in text
    assert "14,751 users per variant (29,502 in total" in text
    assert "R power.prop.test formula" in text
    frame = calc.to_frame()
    assert frame.loc[0, "n_per_variant_rounded"] == 14_751
    mde = power_calculator(0.10, n_per_variant=14_751)
    assert mde.treatment == pytest.approx(0.11, abs=1e-4)
    assert "minimum detectable effect" in mde.summary()
    power = power_calculator(0.10, n_per_variant=5_000, mde=-0.01, power=None)
    assert power.treatment == pytest.approx(0.09) and power.power == pytest.approx(
        prop_power(5_000, 0.1, 0.09)
    )
    cont = power_calculator(5.0, mde=1.0, sd=10.0, kind="continuous")
    assert cont.n_per_variant == pytest.approx(
        power_t_test(delta=0.1, power=0.8).n_per_variant, rel=1e-6
    )


def test_power_curve_plot(tmp_path):
    calc = power_calculator(0.10, mde=0.01)
    ax = calc.plot()
    ax.figure.savefig("/tmp/exp_power_curve.png", bbox_inches="tight")
    assert ax.get_xlabel() == "users per variant (log scale)"
    assert calc.power_at([calc.n_per_variant])[0] == pytest.approx(0.8, abs=1e-8)


@settings(max_examples=25, deadline=None)
@given(
    st.floats(0.02, 0.6),
    st.floats(0.05, 0.5),
    st.floats(0.55, 0.95),
)
def test_power_at_solved_n_is_the_target(p1, rel, target):
    p2 = p1 * (1 + rel)
    n = power_prop_test(p1=p1, p2=p2, power=target).n_per_variant
    assert prop_power(n, p1, p2) == pytest.approx(target, abs=1e-8)
    back = power_prop_test(n=n, p1=p1, power=target).treatment
    assert back == pytest.approx(p2, rel=1e-6)


@settings(max_examples=15, deadline=None)
@given(st.floats(0.1, 2.0), st.floats(0.55, 0.95))
def test_t_power_at_solved_n_is_the_target(delta, target):
    n = power_t_test(delta=delta, power=target).n_per_variant
    assert t_power(n, delta) == pytest.approx(target, abs=1e-8)


def test_power_display_lists_the_design_in_words():
    calc = power_calculator(0.10, mde=0.10, relative=True)
    shown = calc.display_frame().set_index("quantity")["value"]
    assert shown.to_dict() == {
        "users per variant (solved)": "14,751",
        "users in total (2 variants)": "29,502",
        "baseline rate": "10.0%",
        "treatment rate": "11.0%",
        "effect": "+1.0 pp (+10.0% relative)",
        "power": "80%",
        "significance level α": "0.05 (two-sided)",
        "method": calc.method,
    }
    solved_power = power_calculator(0.10, n_per_variant=5_000, mde=-0.01, power=None)
    shown = solved_power.display_frame().set_index("quantity")["value"]
    assert shown["power (solved)"] == f"{prop_power(5_000, 0.1, 0.09) * 100:.1f}%"
    assert shown["effect"] == "-1.0 pp (-10.0% relative)"
    cont = power_calculator(5.0, mde=1.0, sd=10.0, kind="continuous").display_frame()
    assert cont.set_index("quantity")["value"]["standard deviation"] == "10"
    assert "n_per_variant" not in calc._repr_html_()
    assert list(calc.to_frame().columns)[:2] == ["kind", "n_per_variant"]
