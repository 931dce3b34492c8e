"""TF-Serving's REST predict protocol, on numpy (no web framework, no TensorFlow):

request  {"signature_name": S, "instances": [row, ...]}   row form: one entry per example,
                                                          {input: value} (or the bare value
                                                          when S has a single input)
         {"signature_name": S, "inputs": {input: batch}}   columnar form (or the bare batch)
answer   {"predictions": [...]} for rows, {"outputs": ...} for columns; one output is given
         bare, several as {output: value}.

Every problem raises RequestError with an HTTP status and a message naming it. The cheap
checks come first: the body's size against what a valid request can need
(`largest_valid_body`), its count of lists and objects (`largest_valid_nesting`) before it is
parsed, then the batch size and the nesting of the first example, before any array is built.
"""

import json
import math

import numpy as np

from serving.contract import TF_SERVING_DATA_TYPES, Signature, resolve_signature_name

INTEGER_RANGES = {"uint8": (0, 255), "int32": (-(2**31), 2**31 - 1)}
# Room per number in compact JSON (no indentation) for the longest way a client writes one
# ("-1.2345678901234567e-08", ", " and the brackets of a [.., 1] channel axis), and per row and
# per request for names and punctuation.
NUMBER_BYTES = 48
ROW_BYTES = 1024
ENVELOPE_BYTES = 64 * 1024


class RequestError(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}  # of the answer, e.g. a 405's Allow


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed")


def parse_json(raw: bytes, max_lists: int | None = None, max_batch: int | None = None) -> dict:
    """The JSON object in `raw`; with `max_lists` (`largest_valid_nesting` of `max_batch`), a body of
    more lists and objects than that is refused before it is parsed (Python holds an empty list's 3
    bytes of JSON in ~60)."""
    if max_lists is not None and (lists := raw.count(b"[") + raw.count(b"{")) > max_lists:
        raise RequestError(413, f"the request holds {lists} lists and objects; a valid one of this server's largest "
                                f"batch ({max_batch} examples, its limit) holds at most {max_lists}: send at most "
                                f"{max_batch} examples per request")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)  # NaN, Infinity, -Infinity
    except (ValueError, RecursionError) as exc:
        raise RequestError(400, f"malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError(400, f"the request body must be a JSON object, got {type(body).__name__}")
    if (b"true" in raw or b"false" in raw) and _holds_booleans([body.get("instances"), body.get("inputs")]):
        raise RequestError(400, "the inputs hold true or false: every input takes numbers")
    return body


def _holds_booleans(value) -> bool:
    """Any JSON true/false in `value`: numpy would read them as 1 and 0 among numbers. (A loop,
    not recursion: JSON nested as deep as json.loads takes would exceed Python's recursion limit.)"""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, bool):
            return True
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
    return False


def largest_valid_nesting(signatures: dict[str, Signature], max_batch: int) -> int:
    """The most lists and objects (JSON '[' and '{') a predict request of at most `max_batch`
    examples can hold, in either form: per example an object and each input's nested lists."""
    def lists(shape) -> int:  # [d1, ..., dk]: 1 + d1 + d1 d2 + ... + d1...d(k-1) lists
        return sum(math.prod(shape[:depth]) for depth in range(len(shape)))

    per_example = max(1 + sum(lists(spec.shape) for spec in signature.inputs) for signature in signatures.values())
    return max_batch * per_example + 2 * max(len(signature.inputs) for signature in signatures.values()) + 16


def largest_valid_body(signatures: dict[str, Signature], max_batch: int) -> int:
    """The most bytes a compact JSON predict request of at most `max_batch` examples can need, in either form."""
    numbers = max(sum(math.prod(spec.shape) for spec in signature.inputs) for signature in signatures.values())
    return max_batch * (numbers * NUMBER_BYTES + ROW_BYTES) + ENVELOPE_BYTES


def parse_predict(body: dict, signatures: dict[str, Signature], max_batch: int):
    """(signature name, {input name: array}, row form?) of a predict request body."""
    # Other keys (a client's "parameters", "model_spec") are ignored, as TF-Serving ignores them.
    requested = body.get("signature_name")
    if requested is not None and not isinstance(requested, str):
        raise RequestError(400, "signature_name must be a string")
    name = resolve_signature_name(requested)
    if name not in signatures:
        raise RequestError(400, f"unknown signature {requested[:100]!r}; available: {', '.join(sorted(signatures))}, serving_default")
    signature = signatures[name]
    if ("instances" in body) == ("inputs" in body):
        others = sorted(set(body) - {"signature_name", "instances", "inputs"})
        raise RequestError(400, "send exactly one of 'instances' (row form) or 'inputs' (columnar form)"
                                + (f"; the request has {', '.join(repr(key[:40]) for key in others[:10])}" if others else ""))
    rows = "instances" in body
    columns = _columns_from_rows(body["instances"], signature, max_batch) if rows else _named(body["inputs"], signature, "inputs")
    for spec in signature.inputs:
        _check_outline(columns[spec.name], spec, max_batch)
    inputs = {spec.name: _to_array(columns[spec.name], spec) for spec in signature.inputs}
    sizes = {key: len(value) for key, value in inputs.items()}
    if len(set(sizes.values())) != 1:
        raise RequestError(400, f"inputs differ in batch size: {sizes}")
    return name, inputs, rows


def _check_outline(value, spec, max_batch: int) -> None:
    """The batch size, and the nesting along each list's first entry, before the whole value is
    converted: a wrong request is refused at the cost of a few len() calls."""
    if isinstance(value, list) and len(value) > max_batch:
        raise RequestError(413, f"batch of {len(value)} exceeds this server's limit of {max_batch}")
    outline, node = [], value
    while isinstance(node, list) and len(outline) <= len(spec.shape):
        outline.append(len(node))
        node = node[0] if node else None
    if node is not None and (len(outline) != 1 + len(spec.shape) or tuple(outline[1:]) != spec.shape):
        expected = f"[batch{''.join(f', {n}' for n in spec.shape)}]"
        raise RequestError(400, f"input {spec.name}: expected shape {expected}, got {outline or 'a single value'}"
                                f"{' (first entries)' if outline else ''}")


def _named(value, signature: Signature, where: str) -> dict:
    """{input name: value}, accepting a bare value for a single-input signature."""
    names = [spec.name for spec in signature.inputs]
    if len(names) == 1 and not (isinstance(value, dict) and set(value) == set(names)):
        if isinstance(value, dict):
            raise RequestError(400, f"{where}: expected input {names[0]!r}, got {', '.join(sorted(value)) or 'none'}")
        return {names[0]: value}
    if not isinstance(value, dict):
        raise RequestError(400, f"{where}: signature {signature.name} takes named inputs {', '.join(names)}")
    missing, extra = sorted(set(names) - set(value)), sorted(set(value) - set(names))
    if missing or extra:
        problems = ([f"missing input(s) {', '.join(missing)}"] if missing else []) + ([f"unknown input(s) {', '.join(extra)}"] if extra else [])
        raise RequestError(400, f"{where}: {'; '.join(problems)} for signature {signature.name} (takes {', '.join(names)})")
    return value


def _columns_from_rows(instances, signature: Signature, max_batch: int) -> dict:
    if not isinstance(instances, list):
        raise RequestError(400, "'instances' must be a list with one entry per example")
    if len(instances) > max_batch:
        raise RequestError(413, f"batch of {len(instances)} exceeds this server's limit of {max_batch}")
    rows = [_named(row, signature, f"instances[{i}]") for i, row in enumerate(instances)]
    return {spec.name: [row[spec.name] for row in rows] for spec in signature.inputs}


def _to_array(value, spec) -> np.ndarray:
    """A JSON batch as an array of the input's dtype and shape [batch, *spec.shape]."""
    expected = f"[batch{''.join(f', {n}' for n in spec.shape)}]"
    try:
        array = np.asarray(value)
    except ValueError:
        raise RequestError(400, f"input {spec.name}: ragged nested lists; expected shape {expected}") from None
    if array.ndim >= 1 and len(array) == 0:
        raise RequestError(400, f"input {spec.name}: empty batch")
    if array.dtype == object and all(type(item) in (int, float) for item in array.flat):
        try:
            array = array.astype(np.float64)  # integers beyond 64 bits (JSON's 100000000000000000000)
        except OverflowError:  # and beyond float64's range
            raise RequestError(400, f"input {spec.name}: out-of-{spec.dtype}-range values") from None
    if array.dtype.kind not in "iuf":
        found = "strings" if array.dtype.kind == "U" else "booleans" if array.dtype.kind == "b" else "non-numbers"
        raise RequestError(400, f"input {spec.name}: expected {spec.dtype} numbers, got {found}")
    if array.ndim != 1 + len(spec.shape) or tuple(array.shape[1:]) != spec.shape:
        raise RequestError(400, f"input {spec.name}: expected shape {expected}, got {list(array.shape)}")
    if spec.dtype in INTEGER_RANGES:
        low, high = INTEGER_RANGES[spec.dtype]
        if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
            raise RequestError(400, f"input {spec.name}: expected {spec.dtype} integers, got fractional numbers")
        if array.size and (array.min() < low or array.max() > high):
            raise RequestError(400, f"input {spec.name}: {spec.dtype} values must lie in [{low}, {high}]")
        return array.astype(spec.dtype)
    with np.errstate(over="ignore"):  # out-of-range values become infinite, refused below (not a log line per request)
        array = array.astype(spec.dtype)
    if not np.isfinite(array).all():
        raise RequestError(400, f"input {spec.name}: NaN, infinite or out-of-{spec.dtype}-range values")
    return array


def predict_response(outputs: dict[str, np.ndarray], rows: bool) -> dict:
    if rows:
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values())).tolist()}
        lists = {key: value.tolist() for key, value in outputs.items()}
        batch = len(next(iter(lists.values())))
        return {"predictions": [{key: value[i] for key, value in lists.items()} for i in range(batch)]}
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values())).tolist()}
    return {"outputs": {key: value.tolist() for key, value in outputs.items()}}


def signature_def(signature: Signature) -> dict:
    """A signature in the JSON form of TF-Serving's GET .../metadata."""

    def tensor(spec):
        dims = [{"size": "-1", "name": ""}] + [{"size": str(n), "name": ""} for n in spec.shape]
        return {"dtype": TF_SERVING_DATA_TYPES[spec.dtype], "tensor_shape": {"dim": dims, "unknown_rank": False}, "name": f"{signature.name}_{spec.name}"}

    return {
        "inputs": {spec.name: tensor(spec) for spec in signature.inputs},
        "outputs": {spec.name: tensor(spec) for spec in signature.outputs},
        "method_name": "tensorflow/serving/predict",
    }
