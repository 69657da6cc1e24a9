import numpy as np
import pytest

from faster_core.control import ActionSchedule, default_replan_steps


def ramp(horizon, dim, start=0.0):
    return start + np.arange(horizon)[:, None] * np.ones((1, dim))


def test_action_i_is_due_at_the_end_of_control_step_i():
    # As recorded: the target commanded during step i is where the arm is at step i + 1.
    schedule = ActionSchedule(dt=0.1, blend_steps=0)
    assert schedule.push(ramp(10, 2), observed_at=5.0, ready_at=5.0) == 0
    times, actions = schedule.upcoming(5.0)
    np.testing.assert_allclose(times, 0.1 * np.arange(1, 11))
    np.testing.assert_allclose(actions[:, 0], np.arange(10))


def test_latency_skips_the_actions_it_consumed():
    schedule = ActionSchedule(dt=0.1, blend_steps=0)
    skipped = schedule.push(ramp(10, 2), observed_at=5.0, ready_at=5.25)
    assert skipped == 2  # actions due at 5.1 and 5.2 are in the past once the chunk is ready at 5.25
    times, actions = schedule.upcoming(5.25)
    np.testing.assert_allclose(times, [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75])
    np.testing.assert_allclose(actions[:, 0], np.arange(2, 10))
    assert ActionSchedule(dt=0.1).push(ramp(10, 2), observed_at=5.0, ready_at=5.1) == 1  # due exactly now: gone


def test_upcoming_is_strictly_future_and_limited():
    schedule = ActionSchedule(dt=0.05)
    schedule.push(ramp(20, 3), observed_at=0.0, ready_at=0.0)
    times, actions = schedule.upcoming(0.1, limit=4)
    assert np.all(times > 0) and np.all(np.diff(times) > 0)
    np.testing.assert_allclose(actions[:, 1], [2, 3, 4, 5])  # due at 0.15 .. 0.3
    assert len(schedule.upcoming(5.0)[0]) == 0


def test_new_chunk_fades_in_over_the_previous_one():
    schedule = ActionSchedule(dt=0.1, blend_steps=3)
    schedule.push(np.zeros((10, 1)), observed_at=0.0, ready_at=0.0)
    schedule.push(np.ones((10, 1)), observed_at=0.2, ready_at=0.2)
    _, actions = schedule.upcoming(0.15)
    # weights 1/4, 2/4, 3/4 on the new chunk while the old one still covers those times, then the new chunk alone
    np.testing.assert_allclose(actions[:5, 0], [0.25, 0.5, 0.75, 1.0, 1.0])


def test_blend_uses_old_values_interpolated_at_new_times():
    schedule = ActionSchedule(dt=0.1, blend_steps=1)
    schedule.push(ramp(10, 1), observed_at=0.0, ready_at=0.0)  # old value at time t is 10 t - 1
    schedule.push(np.zeros((10, 1)), observed_at=0.25, ready_at=0.25)
    _, actions = schedule.upcoming(0.2)
    assert actions[0, 0] == pytest.approx(0.5 * 2.5)  # half of old(0.35) = 2.5 and half of new 0


def test_beyond_the_old_chunk_nothing_is_blended():
    schedule = ActionSchedule(dt=0.1, blend_steps=5)
    schedule.push(np.zeros((2, 1)), observed_at=0.0, ready_at=0.0)
    schedule.push(np.ones((5, 1)), observed_at=1.0, ready_at=1.0)
    np.testing.assert_allclose(schedule.upcoming(0.95)[1][:, 0], 1.0)


@pytest.mark.parametrize(
    ("actions", "message"),
    [(np.full((5, 2), np.nan), "NaN"), (np.zeros(5), r"\[horizon, dim\]"), (np.zeros((0, 2)), "horizon > 0")],
)
def test_bad_chunks_are_refused(actions, message):
    with pytest.raises(ValueError, match=message):
        ActionSchedule(dt=0.1).push(actions, observed_at=0, ready_at=0)


def test_dimension_change_is_refused():
    schedule = ActionSchedule(dt=0.1)
    schedule.push(np.zeros((5, 2)), observed_at=0, ready_at=0)
    with pytest.raises(ValueError, match="differs"):
        schedule.push(np.zeros((5, 3)), observed_at=0, ready_at=0)


def test_a_running_chunk_is_kept_until_replan_steps_of_it_are_due():
    schedule = ActionSchedule(dt=0.1, blend_steps=0, replan_steps=3)
    schedule.push(np.zeros((10, 1)), observed_at=0.0, ready_at=0.0)  # actions due at 0.1 .. 1.0
    assert schedule.push(np.ones((10, 1)), observed_at=0.2, ready_at=0.25) is None  # two due: declined
    np.testing.assert_allclose(schedule.upcoming(0.25)[1][:, 0], 0.0)
    assert schedule.push(np.ones((10, 1)), observed_at=0.3, ready_at=0.3) == 0  # the third is due at 0.3
    np.testing.assert_allclose(schedule.upcoming(0.3)[1][:, 0], 1.0)


def test_a_chunk_shorter_than_replan_steps_is_replaced_once_it_ran_out():
    schedule = ActionSchedule(dt=0.1, blend_steps=0, replan_steps=5)
    schedule.push(np.zeros((2, 1)), observed_at=0.0, ready_at=0.0)
    assert schedule.push(np.ones((4, 1)), observed_at=0.1, ready_at=0.1) is None
    assert schedule.push(np.ones((4, 1)), observed_at=0.2, ready_at=0.2) == 0


def test_after_clear_the_next_chunk_is_adopted_at_once():
    schedule = ActionSchedule(dt=0.1, replan_steps=10)
    schedule.push(np.zeros((10, 1)), observed_at=0.0, ready_at=0.0)
    schedule.clear()
    assert schedule.push(np.ones((10, 1)), observed_at=0.1, ready_at=0.1) == 0


def test_replan_steps_must_be_positive():
    with pytest.raises(ValueError, match="replan_steps"):
        ActionSchedule(dt=0.1, replan_steps=0)


def test_the_default_replan_steps_is_every_action_when_ensembling_else_half_a_chunk():
    assert [default_replan_steps(h, ensemble=False) for h in (1, 2, 10, 20, 25)] == [1, 1, 5, 10, 12]
    assert [default_replan_steps(h, ensemble=True) for h in (1, 10, 25)] == [1, 1, 1]


def test_ensembling_averages_every_prediction_of_a_time():
    schedule = ActionSchedule(dt=0.1, blend_steps=3, ensemble_coeff=0.0)  # blend_steps plays no part
    for value, observed_at in [(0.0, 0.0), (3.0, 0.1), (6.0, 0.2)]:
        schedule.push(np.full((4, 1), value), observed_at=observed_at, ready_at=observed_at)
    times, actions = schedule.upcoming(0.2)
    np.testing.assert_allclose(times, [0.1, 0.2, 0.3, 0.4])
    # due at 0.3 and 0.4: predicted by all three chunks, (0 + 3 + 6) / 3; at 0.5 by the last two; at 0.6 by the last
    np.testing.assert_allclose(actions[:, 0], [3.0, 3.0, 4.5, 6.0])


def test_a_positive_ensemble_coeff_favours_the_older_predictions():
    coeff = 0.5
    schedule = ActionSchedule(dt=0.1, ensemble_coeff=coeff)
    schedule.push(np.zeros((5, 1)), observed_at=0.0, ready_at=0.0)
    schedule.push(np.ones((5, 1)), observed_at=0.1, ready_at=0.1)
    schedule.push(np.full((5, 1), 2.0), observed_at=0.2, ready_at=0.2)
    _, actions = schedule.upcoming(0.2, limit=1)  # due at 0.3: weights exp(0), exp(-coeff), exp(-2 coeff)
    weights = np.exp(-coeff * np.arange(3))
    assert actions[0, 0] == pytest.approx(weights @ [0.0, 1.0, 2.0] / weights.sum())
    assert actions[0, 0] < 1.0


def test_ensembling_weighs_old_predictions_at_the_new_chunks_times():
    schedule = ActionSchedule(dt=0.1, ensemble_coeff=0.0)
    schedule.push(ramp(10, 1), observed_at=0.0, ready_at=0.0)  # value at time t is 10 t - 1
    schedule.push(np.zeros((10, 1)), observed_at=0.25, ready_at=0.25)  # off the first chunk's grid
    schedule.push(np.zeros((10, 1)), observed_at=0.35, ready_at=0.35)
    _, actions = schedule.upcoming(0.35, limit=1)  # due at 0.45: old 3.5, then two zeros
    assert actions[0, 0] == pytest.approx(3.5 / 3)


def test_after_clear_ensembling_starts_afresh():
    schedule = ActionSchedule(dt=0.1, ensemble_coeff=0.0)
    schedule.push(np.zeros((5, 1)), observed_at=0.0, ready_at=0.0)
    schedule.clear()
    schedule.push(np.ones((5, 1)), observed_at=0.1, ready_at=0.1)
    np.testing.assert_allclose(schedule.upcoming(0.1)[1][:, 0], 1.0)


def test_ensemble_coeff_must_be_finite():
    with pytest.raises(ValueError, match="ensemble_coeff"):
        ActionSchedule(dt=0.1, ensemble_coeff=float("nan"))
