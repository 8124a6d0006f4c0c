"Interleaving: list construction, click credit, the sign test, and the simulator's verdicts."
import numpy as np
import pytest
from scipy import stats

from retail_workbench.core import DataError
from retail_workbench.monitor.interleave import (RankerSimulator, attribute_clicks, balanced,
                                         empirical_power, preference_test, sessions_needed,
                                         team_draft)


def test_team_draft_is_a_fair_prefix_merge():
    rng = np.random.default_rng(0)
    a, b = list(range(20)), list(range(19, -1, -1))
    for _ in range(50):
        items, teams = team_draft(a, b, k=10, rng=rng)
        assert len(set(items)) == 10
        assert abs(teams.count("A") - teams.count("B")) <= 1
        # every A item is within A's top-k, in A's order
        from_a = [i for i, t in zip(items, teams) if t == "A"]
        assert from_a == sorted(from_a)


def test_balanced_contains_both_prefixes():
    rng = np.random.default_rng(1)
    a, b = [1, 2, 3, 4, 5], [5, 4, 3, 2, 1]
    items, _ = balanced(a, b, k=4, rng=rng)
    assert set(items) == {1, 2, 4, 5}


def test_identical_rankers_give_no_preference_and_unbiased_ties():
    rng = np.random.default_rng(2)
    prefs = []
    ranking = list(range(10))
    for _ in range(2000):
        items, teams = team_draft(ranking, ranking, 10, rng)
        clicked = rng.random(10) < 0.3
        prefs.append(attribute_clicks(items, teams, clicked)[2])
    res = preference_test(prefs)
    assert abs(res["delta"]) < 0.05 and res["p_value"] > 0.01


def test_preference_test_matches_scipy_and_rejects_bad_input():
    prefs = [1] * 40 + [-1] * 22 + [0] * 38
    res = preference_test(prefs, alternative="greater")
    expected = stats.binomtest(40, 62, 0.5, alternative="greater").pvalue
    assert res["p_value"] == pytest.approx(expected, abs=1e-12)
    assert res["delta"] == pytest.approx(0.18)
    with pytest.raises(DataError, match="-1, 0"):
        preference_test([2, 1])


@pytest.fixture(scope="module")
def simulator():
    from retail_workbench.data.synth import make_world
    world = make_world(n_users=200, n_items=120, n_days=30, seed=1, n_stores=1)
    return RankerSimulator(world.truth.relevance, world.truth.position_bias, random_state=3)


def test_simulator_prefers_the_less_noisy_ranker(simulator):
    for method in ("team_draft", "balanced"):
        res = preference_test(simulator.interleaved_sessions(1500, method))
        assert res["winner"] == "B", (method, res)


@pytest.mark.slow
def test_interleaving_needs_fewer_sessions_than_ab(simulator):
    needed = sessions_needed(simulator, pilot=3000)
    assert needed["ratio"] > 3
    n = int(needed["interleaving_sessions"])
    power_interleaving = empirical_power(simulator, "team_draft", n, 30)
    assert power_interleaving > empirical_power(simulator, "ab", n, 30)


def test_aa_interleaving_false_positive_rate_is_near_alpha():
    from retail_workbench.data.synth import make_world
    world = make_world(n_users=100, n_items=60, n_days=14, seed=2, n_stores=1)
    same = RankerSimulator(world.truth.relevance, world.truth.position_bias, noise_a=0.8,
                           noise_b=0.8, random_state=4)
    same.rankings = {q: (a, a) for q, (a, _) in same.rankings.items()}
    assert empirical_power(same, "team_draft", 300, 60) <= 0.1
