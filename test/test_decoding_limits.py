"""Limits on decoding a message: sizes, accepted compression, any decoder error."""

import bz2
import json
import lzma
import zlib

import pytest
from kombu.compression import compress
from kombu.exceptions import ContentDisallowed, DecodeError

from nameko_like import serialization
from nameko_like.decoding_limits import DEFAULT_LIMITS, DecodingLimits
from nameko_like.exceptions import ConfigurationError

ACCEPT = {"application/json"}


def test_defaults_accept_the_bounded_schemes_only():
    assert DEFAULT_LIMITS.accept_compression == {
        "application/x-gzip", "application/x-bz2", "application/x-lzma"}
    assert DEFAULT_LIMITS.max_message_size == 16 * 1024 * 1024
    assert DEFAULT_LIMITS.max_decoded_size == 64 * 1024 * 1024


@pytest.mark.parametrize("name", ["zlib", "bzip2", "lzma"])
def test_kombu_compressed_bodies_round_trip(name):
    body, scheme = compress(json.dumps({"ok": [1, 2]}).encode(), name)
    assert serialization.decode(body, "application/json", "utf-8", ACCEPT,
                                {"compression": scheme}) == {"ok": [1, 2]}


@pytest.mark.parametrize("scheme,compressor", [
    ("application/x-gzip", zlib.compressobj),
    ("application/x-bz2", bz2.BZ2Compressor),
    ("application/x-lzma", lzma.LZMACompressor),
])
def test_a_body_inflating_past_the_cap_is_refused(scheme, compressor):
    limits = DecodingLimits(max_decoded_size=1024 * 1024)
    engine = compressor()
    bomb = engine.compress(bytes(4 * 1024 * 1024)) + engine.flush()
    with pytest.raises(DecodeError, match=r"inflates to more than 1048576 bytes "
                                          r"\(config key MAX_DECODED_SIZE\)"):
        serialization.decode(bomb, "application/json", "utf-8", ACCEPT,
                             {"compression": scheme}, limits)


def test_a_body_at_the_cap_is_accepted():
    payload = json.dumps("x" * 1000).encode()
    limits = DecodingLimits(max_decoded_size=len(payload))
    assert serialization.decode(zlib.compress(payload), "application/json", "utf-8", ACCEPT,
                                {"compression": "application/x-gzip"}, limits) == "x" * 1000


def test_compression_not_accepted_names_the_config_key():
    limits = DecodingLimits.from_config({"ACCEPT_COMPRESSION": ["zlib"]})
    body = bz2.compress(b'"hi"')
    with pytest.raises(DecodeError, match=r"compression 'application/x-bz2' is not accepted "
                                          r"\(accepted: application/x-gzip; config key "
                                          r"ACCEPT_COMPRESSION\)"):
        serialization.decode(body, "application/json", "utf-8", ACCEPT,
                             {"compression": "application/x-bz2"}, limits)


def test_unknown_compression_is_a_decode_error():
    with pytest.raises(DecodeError, match="'application/x-brotli' is not accepted"):
        serialization.decode(b"...", "application/json", "utf-8", ACCEPT,
                             {"compression": "application/x-brotli"})


def test_oversized_body_is_refused_before_decoding():
    limits = DecodingLimits(max_message_size=10)
    with pytest.raises(DecodeError, match=r"message of 11 bytes is over the limit of 10 "
                                          r"\(config key MAX_MESSAGE_SIZE\)"):
        serialization.decode(b'"123456789"', "application/json", "utf-8", ACCEPT, None, limits)


def test_deeply_nested_json_is_a_decode_error_not_a_crash():
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(DecodeError, match="RecursionError"):
        serialization.decode(body, "application/json", "utf-8", ACCEPT)


def test_refused_content_type_stays_content_disallowed():
    with pytest.raises(ContentDisallowed):
        serialization.decode(b"x", "application/x-python-serialize", "binary", ACCEPT)


def test_any_error_of_a_custom_decoder_is_a_decode_error():
    from kombu.serialization import register, unregister

    def explode(_data):
        raise KeyError("decoder bug")

    register("explosive", lambda value: "", explode, "application/x-explosive", "utf-8")
    try:
        with pytest.raises(DecodeError, match="decoder bug"):
            serialization.decode(b"x", "application/x-explosive", "utf-8",
                                 {"application/x-explosive"})
    finally:
        unregister("explosive")


@pytest.mark.parametrize("config,message", [
    ({"MAX_MESSAGE_SIZE": 0}, "'MAX_MESSAGE_SIZE': expected a positive number of bytes, got 0"),
    ({"MAX_DECODED_SIZE": "1MB"}, "'MAX_DECODED_SIZE': expected a positive number of bytes"),
    ({"ACCEPT_COMPRESSION": "zlib"}, "'ACCEPT_COMPRESSION': expected a list"),
    ({"ACCEPT_COMPRESSION": ["brotli"]}, "cannot inflate brotli with a size limit"),
])
def test_bad_limits_in_config_name_the_key(config, message):
    with pytest.raises(ConfigurationError, match=message):
        DecodingLimits.from_config(config)
