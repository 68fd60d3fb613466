import math

import numpy as np
import pytest
import speclight


@pytest.mark.parametrize(
    "logprobs,kwargs,message",
    [
        ([math.nan, -1.0], {}, "not finite"),
        ([], {}, "empty"),
        ([-0.1], {"capacity": 0}, "capacity"),
        ([-0.5, -1.0], {"tokens": [1]}, "entries"),
        ([-0.5, -1.0], {"tokens": [1, 1]}, "more than once"),
        ([-0.5, -1.0], {"tokens": [1, -3]}, "outside"),
        ([0.5], {}, "log-probability"),
        ([-0.1], {"capacity": speclight.MAX_CAPACITY + 1}, "maximum"),
        ([-0.1], {"max_depth": 0}, "depth"),
    ],
)
def test_bad_build_input_raises_value_error(logprobs, kwargs, message):
    kwargs.setdefault("capacity", 4)
    with pytest.raises(ValueError, match=message):
        speclight.build(logprobs, **kwargs)


def test_bad_tree_and_walk_input():
    with pytest.raises(ValueError, match="parent"):
        speclight.Tree.from_medusa_choices([[0, 1]])
    tree = speclight.build(np.log([0.6, 0.4]), capacity=3)
    with pytest.raises(ValueError):
        speclight.walk_chosen(tree, [0, 0])  # needs len(tree) + 1 tokens
    with pytest.raises(ValueError):
        speclight.verifier_inputs(tree, context_len=0, root_token=0)
    with pytest.raises(ValueError):
        speclight.evaluate(tree, [math.inf])
    with pytest.raises(ValueError):
        speclight.build_batch([[-0.1], [math.nan]], capacity=2)
