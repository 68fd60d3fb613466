"""Every write_*_into accepts a CPU torch tensor (written through its checked
data_ptr(), torch is never imported by the Rust side): same address before
and after, the same values as the numpy path, and every wrong tensor raises
ValueError and leaves the tensor untouched."""

import numpy as np
import pytest
import speclight

torch = pytest.importorskip("torch")

SENTINEL = 7


def filled_inputs(capacity=40):
    tree = speclight.build(np.log([0.5, 0.3, 0.2]), capacity=capacity)
    vi = speclight.VerifierInputs()
    vi.fill(tree, 11, 3)
    return vi


def writers(n):
    """(method name, torch dtype, numel) of every write_*_into."""
    words = (n + 31) // 32
    return [
        ("write_tokens_into", torch.int64, n),
        ("write_positions_into", torch.int64, n),
        ("write_mask_bias_into", torch.float32, n * n),
        ("write_mask_packed_int32_into", torch.int32, n * words),
        ("write_retrieve_indices_into", torch.int64, None),  # numel from the numpy path
    ]


def numpy_result(vi, name, dtype, numel):
    np_dtype = {torch.int64: np.int64, torch.float32: np.float32, torch.int32: np.int32}[dtype]
    if numel is None:
        numel = vi.retrieve_indices.size
    out = np.full(numel, SENTINEL, dtype=np_dtype)
    getattr(vi, name)(out)
    return out


@pytest.mark.parametrize("index", range(5))
def test_tensor_written_in_place_equals_the_numpy_path(index):
    vi = filled_inputs()
    name, dtype, numel = writers(len(vi))[index]
    expected = numpy_result(vi, name, dtype, numel)
    assert not np.all(expected == SENTINEL)
    for shape in [(expected.size,), (1, expected.size)]:
        out = torch.full(shape, SENTINEL, dtype=dtype)
        address = out.data_ptr()
        getattr(vi, name)(out)
        assert out.data_ptr() == address
        assert np.array_equal(out.reshape(-1).numpy(), expected)


def test_a_slice_of_a_larger_tensor_is_written_at_its_offset():
    vi = filled_inputs()
    n = len(vi)
    big = torch.full((3 * n,), SENTINEL, dtype=torch.int64)
    vi.write_positions_into(big[n : 2 * n])  # a contiguous view: data_ptr includes the offset
    assert torch.equal(big[n : 2 * n], torch.from_numpy(vi.positions))
    assert torch.all(big[:n] == SENTINEL) and torch.all(big[2 * n :] == SENTINEL)


def bad_tensors(n):
    yield "dtype", torch.full((n,), SENTINEL, dtype=torch.int32)
    yield "dtype", torch.full((n,), SENTINEL, dtype=torch.float64)
    yield "elements", torch.full((n + 1,), SENTINEL, dtype=torch.int64)
    yield "elements", torch.full((n - 1,), SENTINEL, dtype=torch.int64)
    yield "contiguous", torch.full((2 * n,), SENTINEL, dtype=torch.int64)[::2]
    yield "contiguous", torch.full((n, 2), SENTINEL, dtype=torch.int64).t()[0]  # stride 2
    yield "requires grad", torch.full((n,), SENTINEL, dtype=torch.float32, requires_grad=True)
    yield "device 'meta'", torch.empty((n,), dtype=torch.int64, device="meta")


@pytest.mark.parametrize("case", range(8))
def test_a_wrong_tensor_raises_and_nothing_is_written(case):
    vi = filled_inputs()
    n = len(vi)
    needle, out = list(bad_tensors(n))[case]
    name = "write_mask_bias_into" if out.dtype == torch.float32 and out.requires_grad else "write_positions_into"
    if name == "write_mask_bias_into":
        out = torch.full((n * n,), SENTINEL, dtype=torch.float32, requires_grad=True)
    before = None if out.device.type == "meta" else out.detach().clone()
    with pytest.raises(ValueError, match=needle):
        getattr(vi, name)(out)
    if before is not None:
        assert torch.equal(out.detach(), before)


def test_a_cuda_tensor_is_refused_with_the_reason():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (the meta-device case checks the same refusal)")
    vi = filled_inputs()
    out = torch.zeros(len(vi), dtype=torch.int64, device="cuda")
    with pytest.raises(ValueError, match="not CPU memory"):
        vi.write_positions_into(out)


def test_other_objects_are_refused():
    vi = filled_inputs()
    with pytest.raises(ValueError, match="numpy array or a torch tensor"):
        vi.write_positions_into([0] * len(vi))
