"""Every limit of the fleet-registry API, in one place.

docs/api.md documents each one with the error a request over it gets; the functions, the
validation and the tests all read them from here. The database enforces the string lengths too
(CHECK constraints of the migrations, which must agree with these numbers), so data written
around the API cannot break them either; ``attributes`` is bounded by the API only, which is why
listings also cap what they return (``MAX_PAGE_BYTES``, ``MAX_LISTED_ATTRIBUTES_BYTES``).

Sizes in bytes are of UTF-8 text; lengths in characters are Unicode code points (what
JSON-schema ``maxLength`` and PostgreSQL ``char_length`` count).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_PAGE_LIMIT",
    "LAMBDA_RESPONSE_LIMIT_BYTES",
    "MAX_ATTRIBUTES_BYTES",
    "MAX_ATTRIBUTES_DEPTH",
    "MAX_ATTRIBUTES_KEYS",
    "MAX_ATTRIBUTE_KEY_LENGTH",
    "MAX_BASE64_BODY_LENGTH",
    "MAX_BODY_BYTES",
    "MAX_CLIENT_ID_LENGTH",
    "MAX_CURSOR_LENGTH",
    "MAX_LISTED_ATTRIBUTES_BYTES",
    "MAX_NAME_LENGTH",
    "MAX_PAGE_BYTES",
    "MAX_PAGE_LIMIT",
    "MAX_SERIAL_LENGTH",
    "MAX_SUB_LENGTH",
]

# ---- request bodies ---------------------------------------------------------------------------

#: A request body (decoded from base64 when ``isBase64Encoded``) holds at most this many bytes:
#: else 413 ``payload_too_large`` on ``body``, checked before the body is parsed.
MAX_BODY_BYTES = 16 * 1024
#: The longest base64 text that can decode to ``MAX_BODY_BYTES`` bytes or fewer (4 characters
#: per 3 bytes); a longer base64 body is 413 without being decoded.
MAX_BASE64_BODY_LENGTH = 4 * -(-MAX_BODY_BYTES // 3)

#: Project, team and device names: 1..100 characters (DB: ``*_name_check``).
MAX_NAME_LENGTH = 100
#: A device serial: 1..100 characters or null (DB: ``device_serial_check``, since 0003).
MAX_SERIAL_LENGTH = 100

#: ``attributes``: every object in it (the top level and any nested one) has at most 32 keys ...
MAX_ATTRIBUTES_KEYS = 32
#: ... and each key, at any depth, is 1..64 characters.
MAX_ATTRIBUTE_KEY_LENGTH = 64
#: ``attributes`` nests at most 4 levels: ``{"a": {"b": {"c": {"d": 1}}}}`` is 4 (an object or
#: array is one level more than the deepest value in it; a scalar is 0).
MAX_ATTRIBUTES_DEPTH = 4
#: ``attributes`` as compact JSON (no whitespace, non-ASCII as UTF-8, numbers in plain decimal
#: as jsonb keeps them: ``validation.stored_json_bytes``) is at most 4 KiB.
MAX_ATTRIBUTES_BYTES = 4 * 1024

# ---- the caller -------------------------------------------------------------------------------

#: The verified ``sub`` claim, stored as ``created_by``: 1..256 characters (DB:
#: ``*_created_by_check``); a token without such a ``sub`` is 401.
MAX_SUB_LENGTH = 256
#: A ``client_id``/``azp`` claim longer than this is not used (logged as absent).
MAX_CLIENT_ID_LENGTH = 256

# ---- listings ---------------------------------------------------------------------------------

#: ``limit`` query parameter: 1..100, default 20.
DEFAULT_PAGE_LIMIT = 20
MAX_PAGE_LIMIT = 100
#: ``cursor`` query parameter: at most 200 characters (a real one is about 50).
MAX_CURSOR_LENGTH = 200
#: A page's JSON body stays at or under 1 MiB: devices stop being added before it would pass
#: (``next_cursor`` then continues after the last device returned). Even escaped into the
#: Lambda response envelope (at worst 3x: ``\\uXXXX\\uXXXX`` for a 4-byte character) that is
#: far below ``LAMBDA_RESPONSE_LIMIT_BYTES``.
MAX_PAGE_BYTES = 1024 * 1024
#: A device whose stored ``attributes`` are larger than this (PostgreSQL's text form of the
#: jsonb; only rows stored before the limits or written around the API can be) is listed with
#: ``"attributes": null``: the value is not even read from the database.
MAX_LISTED_ATTRIBUTES_BYTES = 64 * 1024
#: AWS Lambda's limit on a synchronous response (for reference: what the page cap protects).
LAMBDA_RESPONSE_LIMIT_BYTES = 6 * 1024 * 1024
