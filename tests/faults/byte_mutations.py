"""The hypothesis strategy the loader fuzz tests share: a valid file's bytes, a little damaged."""

from __future__ import annotations

from hypothesis import strategies as st


def mutations(base: bytes, max_edits: int = 4) -> st.SearchStrategy:
    """``base`` with a few bytes overwritten, inserted or deleted, and perhaps cut short."""
    edit = st.tuples(st.sampled_from(["set", "insert", "delete"]), st.integers(0, len(base) - 1),
                     st.integers(0, 255))

    def apply(edits, cut):
        data = bytearray(base)
        for kind, at, value in edits:
            at %= max(len(data), 1)
            if kind == "insert":
                data.insert(at, value)
            elif data:
                data[at:at + 1] = bytes([value]) if kind == "set" else b""
        return bytes(data if cut is None else data[:cut])

    return st.builds(apply, st.lists(edit, min_size=1, max_size=max_edits),
                     st.one_of(st.none(), st.integers(0, len(base))))
