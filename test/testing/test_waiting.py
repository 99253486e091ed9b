"""nameko_like.testing.waiting: wait for a call, then look at its outcome."""

from unittest.mock import Mock

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.testing.waiting import WaitResult, WaitTimeout, wait_for_call


class Payments:
    def __init__(self):
        self.charged = []

    def charge(self, amount):
        if amount < 0:
            raise ValueError("negative amount")
        self.charged.append(amount)
        return f"charged {amount}"


def later(fn, *args):
    """Call ``fn`` from another greenthread, after the block has started waiting."""

    def call():
        eventlet.sleep(0.01)
        try:
            fn(*args)
        except ValueError:
            pass

    return eventlet.spawn(call)


def test_waits_for_a_method_of_any_object():
    payments = Payments()

    with wait_for_call(payments, "charge") as result:
        later(payments.charge, 5)
        assert not result.has_result

    assert result.get() == "charged 5"
    assert payments.charged == [5]
    assert "charge" not in vars(payments)  # unpatched again


def test_the_outcome_can_be_an_error():
    payments = Payments()

    with wait_for_call(payments, "charge") as result:
        later(payments.charge, -1)

    with pytest.raises(ValueError, match="negative amount"):
        result.get()


def test_callback_chooses_the_call_to_wait_for():
    payments = Payments()

    def big(args, kwargs, result, exc_info):
        return args[0] > 10

    with wait_for_call(payments, "charge", callback=big) as result:
        for amount in (1, 2, 30, 40):
            later(payments.charge, amount)

    assert result.get() == "charged 30"


def test_times_out_clearly():
    with pytest.raises(WaitTimeout, match=r"'charge' of .* was not called .* within 0\.05s"):
        with wait_for_call(Payments(), "charge", timeout=0.05):
            pass


def test_waits_for_a_mock_method_keeping_its_behaviour():
    db = Mock()
    db.save.return_value = "saved"

    with wait_for_call(db.save) as result:
        later(db.save, {"id": 1})

    assert result.get() == "saved"
    db.save.assert_called_once_with({"id": 1})
    assert db.save.side_effect is None  # restored


@pytest.mark.parametrize(
    "side_effect, expected",
    [
        (lambda item: item * 2, 6),
        ([7, 8], 7),
    ],
)
def test_mock_side_effects_still_apply(side_effect, expected):
    method = Mock(side_effect=side_effect)

    with wait_for_call(method) as result:
        later(method, 3)

    assert result.get() == expected


def test_mock_side_effect_exception_is_raised_and_recorded():
    method = Mock(side_effect=KeyError("missing"))

    with wait_for_call(method) as result:
        later(method, 3)

    with pytest.raises(KeyError):
        result.get()
    with pytest.raises(KeyError):
        method()  # the side effect was restored


def test_mock_form_with_callback_and_timeout():
    method = Mock(return_value=None)

    with pytest.raises(WaitTimeout):
        with wait_for_call(method, callback=lambda *args: False, timeout=0.05):
            later(method, 1)
    assert method.call_count == 1


def test_target_must_be_a_name():
    with pytest.raises(TypeError, match="callback by keyword"):
        with wait_for_call(Mock(), lambda *args: True):
            pass


def test_wait_result_keeps_the_first_outcome():
    result = WaitResult()
    with pytest.raises(WaitResult.NotReady):
        result.get()
    assert result.wait(0.01) is False

    result.send("first")
    result.send("second")

    assert result.has_result and result.get() == "first"
    assert result.wait(0) is True


def test_nameko_form_on_a_mock_restores_the_child():
    db = Mock()
    save = db.save
    save.return_value = "ok"

    with wait_for_call(db, "save") as result:
        later(db.save, 1)

    assert result.get() == "ok"
    assert db.save is save
    save.assert_called_once_with(1)
