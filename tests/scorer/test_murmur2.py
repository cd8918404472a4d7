"""The compiled murmur2 is Kafka's: Java's own test values, and aiokafka's function."""

import pytest
from aiokafka.partitioner import murmur2
from hypothesis import given
from hypothesis import strategies as st

from services.scorer.murmur2 import positive_murmur2

JAVA = {
    # org.apache.kafka.common.utils.Utils.murmur2 of these strings (signed 32-bit)
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize(("text", "signed"), JAVA.items())
def test_the_java_clients_values(text: str, signed: int) -> None:
    assert positive_murmur2(text.encode()) == signed & 0x7FFFFFFF


@given(st.binary(max_size=300))
def test_the_same_as_aiokafkas_murmur2(data: bytes) -> None:
    assert positive_murmur2(data) == murmur2(data) & 0x7FFFFFFF


def test_high_bytes_and_every_tail_length() -> None:
    for length in range(12):
        data = bytes(range(255, 255 - length, -1))
        assert positive_murmur2(data) == murmur2(data) & 0x7FFFFFFF
